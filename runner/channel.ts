import type { FaultSpec } from '../domain/forge-checks.ts';
import type { ApiSpec, Permissions, SideEffect } from '../domain/tool.ts';

/**
 * The channel between the judge (the runner process that reports to the host) and the judged
 * process it starts for each tool call or test file (judged.ts).
 *
 *   judge → judged: one JSON line on the judged process's stdin (the job), then end of stdin.
 *   judged → judge: lines on fd 3, each `<nonce> <JSON frame>`; before the job, the bare line `hello`.
 *
 * Not Node's built-in 'ipc' channel: its parent end JSON.parses every message as it arrives, with no
 * bound on size or depth, so a 100k-deep message would be parsed (and crash) before the judge could
 * refuse it. Here the judge reads bytes and bounds each line before parsing it. The nonce is made by
 * the judge per job; judged code writing to fd 3 without it only gets its job failed. This module
 * loads no zod (the judged process imports it); the judge's schemas for the reports are frames.ts.
 */
export const HELLO = 'hello';
/**
 * `runner idle --egress`: the container is on an egress network, so its job is a call through the
 * proxy. The judge passes the flag on to the judged process it starts ahead of the job, which then
 * loads the proxy-aware fetch (undici, the bulk of a network call's start) while the container
 * waits, before it says hello, instead of after the job arrived. Still before any judged code, as
 * before. Only a preload: a proxied job in a container started without it loads it on arrival.
 */
export const EGRESS_FLAG = '--egress';
/**
 * zod, alone, as one ESM file in the image beside the runner (RUNNER_DIR, protocol.ts; here because the
 * judged process imports this module and no zod): the bundles of tools and tests import it instead of
 * inlining it, so building one costs a few ms, not ~0.1 s. Read-only and in the image's hash like the
 * runner. The judged process preloads it while the container waits; the judge keeps its own zod.
 */
export const ZOD_FILE = 'zod.mjs';
export const ZOD_PATH = `/opt/forge/${ZOD_FILE}`;
/**
 * The testkit (testkit.ts), alone, likewise: test bundles import it instead of inlining it (~17 kB of
 * each, ~5 ms of esbuild), and the judged process of an offline container loads it while it waits.
 */
export const TESTKIT_FILE = 'testkit.mjs';
export const TESTKIT_PATH = `/opt/forge/${TESTKIT_FILE}`;
/** A line on fd 3 longer than this is refused unread (the output is capped well below it). */
export const MAX_CHANNEL_LINE = 3 * 1024 * 1024;

/**
 * checks mode: one call of Forge's own checks (checks.ts), made up by the judge from the schema an
 * earlier process described, so the cases are in the job line, read before any judged code exists.
 */
export interface ChildCase {
  i: number;
  input: unknown;
  budgetMs: number;
  /** ctx.fetch is answered by the mock of the job's API spec, with this fault injected (without one: the plain mock) */
  fault?: FaultSpec;
  /** a fault case: requests past this many are refused (retrying without bound) */
  maxRequests?: number;
  /** run with the other parallel cases, all at once, after the sequential ones */
  parallel?: boolean;
}

/** The job as the judge sends it; the judge made it, so the judged process takes it as it is. */
export interface ChildJob {
  nonce: string;
  mode: 'call' | 'test' | 'describe' | 'checks';
  /** absolute path of the module to load */
  entry: string;
  input?: unknown;
  chooseInput?: boolean;
  env: Record<string, string>;
  permissions?: Permissions;
  sideEffect?: SideEffect;
  timeoutMs: number;
  proxyUrl?: string;
  allowOpaqueSchemas?: boolean;
  /** checks mode: the calls to make, and the API their mock answers as (none: requests fail, there is no network) */
  cases?: ChildCase[];
  apiSpec?: ApiSpec;
}
