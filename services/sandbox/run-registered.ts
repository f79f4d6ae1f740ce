import fs from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { ToolMissingError } from '../../domain/errors.ts';
import { type ToolManifest, toolManifestSchema } from '../../domain/tool.ts';
import type { ProxyDecision } from '../../runner/proxy.ts';
import { log } from '../log.ts';
import { bundleTool, bundleToolModule } from './bundle.ts';
import { createEgressPool, type EgressPool } from './egress-pool.ts';
import type { SandboxBackend, SandboxJob, SandboxResult } from './types.ts';

/**
 * Runs a registered tool version once in a fresh sandbox. The tool gets only what its manifest
 * declares: ctx.fetch limited to its domains, and of this worker's environment (where secrets
 * live, never in code) only its declared variables. A tool with network permissions runs on its
 * version's egress network (stages/egress.ts, kept warm per version by egress-pool.ts), whose only
 * way out is a proxy admitting just those domains and no private destination: ctx refuses
 * undeclared domains, the proxy refuses them again; the call reports the proxy's decisions for
 * its own container only. A tool without any runs with no network at all. A tool approved as
 * `read` may send only GET, HEAD and OPTIONS: ctx.fetch refuses any other method, and so does
 * its proxy.
 */
export interface RegisteredToolDeps {
  sandbox: SandboxBackend;
  toolsDir: string;
  /** where a tool with network permissions gets its egress network and proxy container */
  egress: {
    docker: Docker;
    image: string;
    /** extra /etc/hosts lines for the proxy ("name:ip"); tests point names at chosen addresses */
    extraHosts?: string[];
    /** bench/test hook: where the proxy connects for an allowed address:port (stages/egress.ts) */
    redirect?: Record<string, string>;
    /** how long a version's unused egress stays open; default FORGE_EGRESS_IDLE_S */
    idleMs?: number;
    /** a pool to share (default: one of this runner's own, closed by close() or closeEgressPools) */
    pool?: EgressPool;
  };
  env?: NodeJS.ProcessEnv;
}

export interface RunRegisteredToolInput {
  name: string;
  version: number;
  input: unknown;
  timeoutMs?: number;
}

function runJob(sandbox: SandboxBackend, job: SandboxJob, signal: AbortSignal | undefined): Promise<SandboxResult> {
  return sandbox.runJob(job, { signal });
}

function refusals(decisions: ProxyDecision[]): string[] {
  return decisions
    .filter((d) => d.decision !== 'allow')
    .map((d) => `${d.decision === 'deny' ? 'refused' : 'failed'} ${d.host}:${d.port} (${d.reason ?? 'no reason given'})`);
}

/**
 * The proxy's refusals explain a failed call far better than undici's "Proxy response (403)",
 * so they join the reason; a tool that swallowed one still leaves a warning in the log.
 */
function withProxyNotes(result: SandboxResult, tool: string, decisions: ProxyDecision[]): SandboxResult {
  const notes = refusals(decisions);
  if (notes.length) log.warn('egress proxy refused requests of a tool call', { tool, refusals: notes });
  if (result.ok || !notes.length) return { ...result, egress: decisions };
  return { ...result, egress: decisions, reason: `${result.reason ?? 'the call failed'}; egress proxy: ${notes.join('; ')}` };
}

export function createRegisteredToolRunner(deps: RegisteredToolDeps) {
  const env = deps.env ?? process.env;
  let ownPool: EgressPool | undefined;
  function egressPool(): EgressPool {
    if (deps.egress.pool) return deps.egress.pool;
    ownPool ??= createEgressPool({
      docker: deps.egress.docker,
      image: deps.egress.image,
      extraHosts: deps.egress.extraHosts,
      redirect: deps.egress.redirect,
      idleMs: deps.egress.idleMs,
    });
    return ownPool;
  }

  /** Runs the job on its version's egress network (opened, reused or replaced by the pool). */
  async function callThroughEgress(manifest: ToolManifest, job: SandboxJob, signal: AbortSignal | undefined): Promise<SandboxResult> {
    const key = { tool: manifest.name, version: manifest.version, allow: manifest.permissions.network, sideEffect: manifest.sideEffect };
    const { result, decisions } = await egressPool().run(key, job, { signal });
    return withProxyNotes(result, manifest.name, decisions);
  }

  /** One call of a bundled version with only what its manifest declares. */
  async function callBundle(
    manifest: ToolManifest,
    bundled: string,
    input: unknown,
    opts: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<SandboxResult> {
    const declaredEnv = Object.fromEntries(manifest.permissions.env.flatMap((k) => (env[k] !== undefined ? [[k, env[k] as string]] : [])));
    const job: SandboxJob = {
      mode: 'call',
      files: { 'tool.mjs': bundled },
      entry: 'tool.mjs',
      input,
      permissions: manifest.permissions,
      // The approved manifest's side effect, not whatever the module says of itself.
      sideEffect: manifest.sideEffect,
      env: declaredEnv,
      limits: opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : undefined,
    };
    return manifest.permissions.network.length ? callThroughEgress(manifest, job, opts.signal) : runJob(deps.sandbox, job, opts.signal);
  }

  return {
    /** egress opened by this runner's own pool (a shared pool is its owner's to close) */
    egressStats: () => (deps.egress.pool ?? ownPool)?.stats(),
    async close(): Promise<void> {
      await ownPool?.close();
    },

    async run(input: RunRegisteredToolInput, opts: { signal?: AbortSignal } = {}): Promise<SandboxResult> {
      const dir = path.join(deps.toolsDir, input.name, `v${input.version}`);
      const manifestText = await fs.readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => {
        throw new ToolMissingError(`${input.name} v${input.version} is not on disk at ${dir}`);
      });
      const manifest = toolManifestSchema.parse(JSON.parse(manifestText));
      const bundled = await bundleToolModule(path.join(dir, 'tool.ts'));
      return callBundle(manifest, bundled, input.input, { timeoutMs: input.timeoutMs, signal: opts.signal });
    },

    /**
     * A candidate's source (an improve cycle's rewrite), called once per input under the manifest
     * of the version it would replace: the same permissions, environment and side effect, so the
     * regression gate sees it as production would.
     */
    async runCandidate(
      input: { manifest: ToolManifest; source: string; inputs: unknown[]; timeoutMs?: number },
      opts: { signal?: AbortSignal } = {},
    ): Promise<SandboxResult[]> {
      const bundled = await bundleTool(input.source);
      const results: SandboxResult[] = [];
      for (const one of input.inputs)
        results.push(await callBundle(input.manifest, bundled, one, { timeoutMs: input.timeoutMs, signal: opts.signal }));
      return results;
    },
  };
}
