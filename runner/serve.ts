import type { Readable, Writable } from 'node:stream';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, type CallToolResult, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { LoadedFrame } from './frames.ts';
import type { RunnerResult } from './protocol.ts';

/**
 * Serves one tool as an MCP server over stdio, with the low-level Server so the JSON schemas are
 * exactly the tool's own. The server is the judge: the tool's schemas come from a judged process
 * that only loaded it, and every call runs in a fresh judged process (judge.ts), so tool code never
 * shares a process with the stdout the MCP messages go out on.
 */
export interface ServeOptions {
  stdin: Readable;
  stdout: Writable;
  /** the tool as a judged process described it when it loaded */
  loaded: LoadedFrame;
  /** one call, judged */
  call(args: unknown): Promise<RunnerResult>;
}

export function describeTool(loaded: LoadedFrame): Tool {
  const inputSchema = loaded.schemas.input ?? { type: 'object' };
  const outputSchema = loaded.schemas.output;
  return {
    name: loaded.name,
    description: loaded.description,
    // MCP requires object schemas at the top level; a tool whose output is not an object
    // still works, it just does not advertise an outputSchema (clients read the text).
    inputSchema: { ...inputSchema, type: 'object' } as Tool['inputSchema'],
    ...(outputSchema?.type === 'object' ? { outputSchema: outputSchema as Tool['outputSchema'] } : {}),
  };
}

export function toCallResult(result: RunnerResult, advertisesOutput: boolean): CallToolResult {
  if (!result.ok) {
    return { isError: true, content: [{ type: 'text', text: JSON.stringify({ ...result.error, logs: result.logs }) }] };
  }
  return {
    content: [{ type: 'text', text: JSON.stringify(result.output) }],
    ...(advertisesOutput ? { structuredContent: result.output as Record<string, unknown> } : {}),
  };
}

export async function serveTool(opts: ServeOptions): Promise<void> {
  const descriptor = describeTool(opts.loaded);
  const name = opts.loaded.name;
  const server = new Server({ name: `forge-tool-${name}`, version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [descriptor] }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    if (req.params.name !== name) {
      return {
        isError: true,
        content: [
          {
            type: 'text',
            text: JSON.stringify({ code: 'TOOL_UNKNOWN', message: `this server serves only ${name}, not ${req.params.name}` }),
          },
        ],
      };
    }
    return toCallResult(await opts.call(req.params.arguments ?? {}), descriptor.outputSchema !== undefined);
  });
  const closed = new Promise<void>((resolve) => {
    server.onclose = () => resolve();
    // The transport does not notice stdin closing by itself: the client hanging up ends the server.
    opts.stdin.on('end', () => void server.close());
  });
  await server.connect(new StdioServerTransport(opts.stdin, opts.stdout));
  await closed;
}
