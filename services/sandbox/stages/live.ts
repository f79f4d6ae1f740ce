import type Docker from 'dockerode';
import type { ApiSpec } from '../../../domain/tool.ts';
import type { StageResult } from '../../../domain/verification.ts';
import type { ProxyDecision } from '../../../runner/proxy.ts';
import type { Reach } from '../../../runner/reach.ts';
import { bundleTool, ToolBundleError } from '../bundle.ts';
import type { SandboxBackend } from '../types.ts';
import { openEgress } from './egress.ts';
import type { StaticManifest } from './static.ts';

/**
 * Stage 3: one real, read-only call, only when the API spec marks an endpoint safeRead
 * and the tool declares itself read-only. The tool runs in a sandbox container on an
 * internal network whose only way out is the egress proxy (egress.ts), which admits only
 * the tool's declared domains and refuses private destinations.
 *
 * Fair both ways: when this machine cannot reach the API (offline, DNS down, no answer), the
 * stage is skipped with that reason rather than failed, so no repair is spent on code that was
 * right. That verdict comes from Forge's own check beside the proxy (runner/reach.ts), before the
 * tool runs and again when the proxy could not reach a host during the call; never from the tool.
 *
 * The call is an ordinary call job: the runner judges it like a production call (the tool in its
 * own judged process, the output checked against its schema by the judge), so nothing the tool
 * prints can pass for the stage's result.
 */
export interface LiveInput {
  source: string;
  apiSpec?: ApiSpec;
  /** from the static stage: declared domains, env vars and sideEffect */
  manifest: StaticManifest | null;
  /** real values for the tool's declared env vars (e.g. from the operator's environment) */
  secrets?: Record<string, string>;
  /** the input for the call; default: the first example of manifest.input, else all defaults */
  liveInput?: unknown;
}

export interface LiveOptions {
  docker: Docker;
  image: string;
  /** extra /etc/hosts entries for the proxy ("name:ip"), for tests without internet */
  extraHosts?: string[];
  /** the call's own budget (default 20 s) */
  timeoutMs?: number;
}

const DEFAULT_CALL_MS = 20_000;

/** Why no live call may be made, or null when one may. Checked before any container starts. */
export function liveSkipReason(input: Pick<LiveInput, 'apiSpec' | 'manifest' | 'secrets'>): string | null {
  const { apiSpec, manifest } = input;
  if (!apiSpec) return 'no api-spec.json: nothing says which real call is harmless';
  const safe = apiSpec.endpoints.filter((e) => e.safeRead);
  if (safe.length === 0) return 'api-spec.json marks no endpoint safeRead, so no real call is known to be harmless';
  if (!manifest) return 'the manifest could not be read statically, so the declared domains for the egress proxy are unknown';
  if (manifest.sideEffect !== 'read' || manifest.destructive) {
    return `the tool declares sideEffect '${manifest.sideEffect ?? 'unknown'}'${manifest.destructive ? ' (destructive)' : ''}: a real call could change data`;
  }
  if (manifest.network.length === 0) return 'the tool declares no network domains, so there is nothing to call';
  const needed = apiSpec.auth.kind !== 'none' ? apiSpec.auth.envVar : undefined;
  if (needed && !input.secrets?.[needed])
    return `the API needs ${needed} for a real call and no value was given for it (CLI: --env ${needed})`;
  return null;
}

function denials(decisions: ProxyDecision[]): string {
  const refused = decisions.filter((d) => d.decision !== 'allow');
  if (!refused.length) return '';
  return `; egress proxy: ${refused.map((d) => `${d.decision === 'deny' ? 'refused' : 'failed'} ${d.host}:${d.port} (${d.reason})`).join('; ')}`;
}

/** The API's host and port, from its base URL: what "can this machine reach the API" is asked about. */
function apiAuthority(apiSpec: ApiSpec): { host: string; port: number; tls: boolean } | null {
  try {
    const url = new URL(apiSpec.baseUrl);
    const tls = url.protocol !== 'http:';
    return { host: url.hostname, port: url.port ? Number(url.port) : tls ? 443 : 80, tls };
  } catch {
    return null;
  }
}

function environmentSkip(reach: Extract<Reach, { status: 'unreachable' }>, durationMs: number, toolError?: string): StageResult {
  const during = toolError ? `; the tool's call failed with ${toolError}, which that explains` : '';
  return {
    stage: 'live',
    status: 'skipped',
    reason: `live stage skipped: ${reach.reason}${during}. The environment could not reach the API, so no real call judged the tool`,
    durationMs,
  };
}

function declaredSecrets(manifest: StaticManifest, secrets: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(manifest.env.filter((k) => secrets[k] !== undefined).map((k) => [k, secrets[k]!]));
}

export async function liveStage(input: LiveInput, sandbox: SandboxBackend, opts: LiveOptions): Promise<StageResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const skip = liveSkipReason(input);
  if (skip) return { stage: 'live', status: 'skipped', reason: skip, durationMs: elapsed() };
  const manifest = input.manifest!;
  const safeIds = input.apiSpec!.endpoints.filter((e) => e.safeRead).map((e) => e.id);
  const testName = `one real call through the egress proxy (safe read: ${safeIds.join(', ')})`;

  let files: Record<string, string>;
  try {
    files = { 'tool.mjs': await bundleTool(input.source) };
  } catch (err) {
    if (err instanceof ToolBundleError)
      return { stage: 'live', status: 'failed', reason: err.message, findings: err.findings, durationMs: elapsed() };
    throw err;
  }
  const callMs = opts.timeoutMs ?? DEFAULT_CALL_MS;
  const egress = await openEgress(opts.docker, { image: opts.image, allow: manifest.network, extraHosts: opts.extraHosts });
  const api = apiAuthority(input.apiSpec!);
  /** Asked again after a failed call only when the proxy itself could not reach a host: the network may have gone meanwhile. */
  const unreachableAfter = async (decisions: ProxyDecision[]) => {
    if (!api || !decisions.some((d) => d.decision === 'error')) return undefined;
    const reach = await egress.reach(api.host, api.port, api.tls);
    return reach?.status === 'unreachable' ? reach : undefined;
  };
  try {
    // Forge's own look first: when this machine cannot reach the API, no tool code runs at all.
    const before = api ? await egress.reach(api.host, api.port, api.tls) : undefined;
    if (before?.status === 'unreachable') return environmentSkip(before, elapsed());
    const result = await sandbox.runJob({
      mode: 'call',
      files,
      entry: 'tool.mjs',
      ...(input.liveInput !== undefined ? { input: input.liveInput } : { chooseInput: true }),
      network: egress.network,
      proxyUrl: egress.proxyUrl,
      env: declaredSecrets(manifest, input.secrets),
      permissions: { network: manifest.network, env: manifest.env },
      sideEffect: 'read',
      limits: { timeoutMs: callMs },
    });
    const decisions = await egress.settledDecisions();
    const proxyNote = denials(decisions);
    if (result.skipped !== undefined) return { stage: 'live', status: 'skipped', reason: result.skipped, durationMs: elapsed() };
    const callInput = result.input ?? input.liveInput;
    if (result.ok) {
      return {
        stage: 'live',
        status: 'passed',
        tests: [{ name: testName, passed: true, durationMs: result.durationMs }],
        coverage: 1,
        durationMs: elapsed(),
      };
    }
    const error = `${result.error?.code ?? 'FAILED'}: ${result.error?.message ?? result.reason ?? 'the call failed'}${proxyNote}`;
    const offline = await unreachableAfter(decisions);
    if (offline) return environmentSkip(offline, elapsed(), `"${error}"`);
    if (callInput === undefined) {
      return {
        stage: 'live',
        status: 'failed',
        reason: `the live call did not complete: ${result.reason ?? error}${proxyNote}`,
        durationMs: elapsed(),
      };
    }
    return {
      stage: 'live',
      status: 'failed',
      reason: `the real call with input ${JSON.stringify(callInput)} failed: ${error}`,
      tests: [{ name: testName, passed: false, durationMs: result.durationMs, error }],
      coverage: 0,
      durationMs: elapsed(),
    };
  } finally {
    await egress.close();
  }
}
