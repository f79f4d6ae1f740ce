import { z } from 'zod';
import { callTool } from './call.ts';
import { JOB_DIR, type RunnerResult } from './protocol.ts';
import { proxiedFetch } from './proxy-fetch.ts';
import { type LoadedTool, loadTool } from './tool-module.ts';

/**
 * The live smoke probe: runs inside a sandbox container on the egress network (exec
 * mode), loads the bundled tool and calls it once for real, with ctx.fetch going through
 * the egress proxy. Node 20's own fetch ignores HTTPS_PROXY, so ctx.fetch is undici's
 * fetch with a ProxyAgent. Prints one marker line with the result.
 *
 * Environment: FORGE_PROXY_URL (required), FORGE_LIVE_INPUT (JSON, optional),
 * FORGE_LIVE_TIMEOUT_MS, plus the secrets the tool declares (only those reach it).
 */
export const LIVE_MARKER = '\u001eFORGE_LIVE\u001f';

export type LiveProbeOutput = { skipped: string; input?: undefined } | ({ skipped?: undefined; input: unknown } & RunnerResult);

/** The input for the one real call: given explicitly, else the schema's first example, else all defaults. */
export function chooseInput(tool: LoadedTool, given: string | undefined): { input: unknown } | { skipped: string } {
  if (given) return { input: JSON.parse(given) as unknown };
  try {
    const schema = z.toJSONSchema(tool.input as unknown as z.ZodType, { io: 'input', unrepresentable: 'any' }) as { examples?: unknown };
    if (Array.isArray(schema.examples) && schema.examples.length > 0) return { input: schema.examples[0] };
  } catch {
    // Not representable as JSON Schema: fall through to defaults.
  }
  if (tool.input.safeParse({}).success) return { input: {} };
  return { skipped: 'no input for the live call: add .meta({ examples: [{ ... }] }) to manifest.input, or pass a live input' };
}

function print(out: LiveProbeOutput): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${LIVE_MARKER}${JSON.stringify(out)}\n`, () => resolve()));
}

export async function runLiveProbe(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const proxyUrl = env.FORGE_PROXY_URL;
  if (!proxyUrl) throw new Error('FORGE_PROXY_URL is not set');
  const tool = await loadTool(`${JOB_DIR}/tool.mjs`);
  const chosen = chooseInput(tool, env.FORGE_LIVE_INPUT);
  if ('skipped' in chosen) return print({ skipped: chosen.skipped });
  const timeoutMs = Number(env.FORGE_LIVE_TIMEOUT_MS ?? 20_000);
  const result = await callTool(tool, chosen.input, { env, timeoutMs, fetchImpl: proxiedFetch(proxyUrl) });
  await print({ input: chosen.input, ...result });
  // Keep-alive sockets to the proxy would hold the process open.
  process.exit(0);
}
