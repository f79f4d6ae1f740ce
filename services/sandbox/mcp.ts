import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import type Docker from 'dockerode';
import type { Permissions, SideEffect } from '../../domain/tool.ts';
import { READY_MARKER } from '../../runner/protocol.ts';
import type { RunnerContainer } from './container.ts';
import { newJobId, startContainer } from './docker.ts';
import { resolveLimits, type SandboxLimits } from './types.ts';

/**
 * A forged tool as an MCP server in its own hardened container: the runner's `serve`
 * mode speaks MCP over the container's stdin/stdout, and this transport is the host's
 * end of that pipe (what StdioClientTransport is for a local child process).
 */
export class ContainerStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private buffer = '';
  private closed = false;

  constructor(private readonly handle: RunnerContainer) {}

  async start(): Promise<void> {
    this.handle.stdout.sink = (chunk) => this.receive(chunk.toString('utf8'));
    // Whatever arrived before start() (the READY line, at least) is replayed through the parser.
    const early = this.handle.stdout.text;
    this.handle.stdout.text = '';
    if (early) this.receive(early);
    void this.handle.ended.then(() => this.finish());
  }

  private receive(text: string): void {
    this.buffer += text;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      // The runner's own markers, or stray prints by the tool, are not protocol messages.
      if (!line || line === READY_MARKER || !line.startsWith('{')) continue;
      try {
        this.onmessage?.(JSONRPCMessageSchema.parse(JSON.parse(line)));
      } catch (err) {
        this.onerror?.(
          new Error(`the tool server sent a line that is not a JSON-RPC message: ${line.slice(0, 200)} (${(err as Error).message})`),
        );
      }
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw new Error('the sandboxed tool server has exited');
    this.handle.write(JSON.stringify(message) + '\n');
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }

  async close(): Promise<void> {
    await this.handle.remove();
    this.finish();
  }
}

export interface ToolSessionOptions {
  docker: Docker;
  image: string;
  /** the bundled tool module(s) */
  files: Record<string, string>;
  entry: string;
  env?: Record<string, string>;
  permissions?: Permissions;
  /** the approved side effect; without it the tool's own manifest declares it */
  sideEffect?: SideEffect;
  /** timeoutMs applies to each call; memory/pids/cpus to the container */
  limits?: Partial<SandboxLimits>;
  network?: string;
  id?: string;
}

export interface ToolSession {
  client: Client;
  containerId: string;
  /** closes the MCP session and removes the container */
  close(): Promise<void>;
}

/** Starts `runner serve` for one tool in a fresh container and connects an MCP client to it. */
export async function openToolSession(opts: ToolSessionOptions): Promise<ToolSession> {
  const limits = resolveLimits(opts.limits);
  const jobId = newJobId({ id: opts.id });
  const handle = await startContainer(opts.docker, opts.image, jobId, limits, opts.network);
  try {
    handle.send(
      {
        mode: 'serve',
        files: opts.files,
        entry: opts.entry,
        env: opts.env ?? {},
        permissions: opts.permissions,
        ...(opts.sideEffect ? { sideEffect: opts.sideEffect } : {}),
        limits: { timeoutMs: limits.timeoutMs },
      },
      Number.MAX_SAFE_INTEGER,
    );
    const transport = new ContainerStdioTransport(handle);
    const client = new Client({ name: 'forge', version: '1.0.0' });
    await client.connect(transport);
    return {
      client,
      containerId: handle.id.slice(0, 12),
      close: async () => {
        await client.close().catch(() => undefined);
        await handle.remove();
      },
    };
  } catch (err) {
    await handle.remove();
    throw err;
  }
}
