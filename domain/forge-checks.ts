import { z } from 'zod';

/**
 * Forge's own checks of a tool, which do not depend on the tests the model wrote for it (the
 * forge-checks verification stage; the runner, as judge, applies these rules to what it saw):
 *
 *  - inputs generated from the tool's input schema (domain/input-gen.ts), edge values included,
 *    must give output that fits the output schema, or a clean error: an Error the tool threw on
 *    purpose, with a message. A crash (TypeError, RangeError, …), a hang, a non-Error throw,
 *    output that breaks the schema or cannot be carried fails;
 *  - a tool with an API spec meets the API's failures the tool contract names (docs/tool-contract.md,
 *    "Errors"), injected by the testkit's mock, and is judged on what the mock saw (how many
 *    requests, how far apart, by the judge's clock) and on how the call ended.
 *
 * Pure: the constants, the verdict rules and the report's schema.
 */

export type FaultKind = 'rate_limit' | 'server_error' | 'timeout' | 'malformed_json';

/** A fault as the testkit's mock takes it (runner/testkit.ts `Fault`). */
export interface FaultSpec {
  kind: FaultKind;
  times?: number;
  status?: number;
  retryAfter?: number;
  afterMs?: number;
}

export interface FaultCheck {
  kind: FaultKind;
  name: string;
  fault: FaultSpec;
}

export const RETRY_AFTER_S = 1;
export const SERVER_ERROR_STATUS = 503;
export const TIMEOUT_AFTER_MS = 300;
/** More requests than this in one fault check is retrying without bound: the mock refuses the rest. */
export const MAX_FAULT_REQUESTS = 10;
/**
 * The judge's clock reads reports as they arrive (the judged process's own clock is not evidence),
 * so a busy machine that delivers the 429's report late shortens the gap it sees: a retry this much
 * early still honoured Retry-After. A tool that ignores the header retries within milliseconds.
 */
export const RETRY_AFTER_SLACK_MS = 300;
/** A generated input's call budget, and a fault check's (the tool's own backoff included). */
export const INPUT_CASE_MS = 5_000;
export const FAULT_CASE_MS = 10_000;

export const FAULT_CHECKS: readonly FaultCheck[] = [
  {
    kind: 'rate_limit',
    name: `the API answers 429 with Retry-After: ${RETRY_AFTER_S} once`,
    fault: { kind: 'rate_limit', times: 1, retryAfter: RETRY_AFTER_S },
  },
  {
    kind: 'server_error',
    name: `the API answers ${SERVER_ERROR_STATUS} to every request`,
    fault: { kind: 'server_error', status: SERVER_ERROR_STATUS },
  },
  { kind: 'timeout', name: 'every request times out', fault: { kind: 'timeout', afterMs: TIMEOUT_AFTER_MS } },
  { kind: 'malformed_json', name: 'the API answers malformed JSON', fault: { kind: 'malformed_json' } },
];

/** How a case's call ended, as the judge saw it (its error as the judged process reported it). */
export interface CaseError {
  code: string;
  message: string;
  /** the thrown value's name (TypeError, TimeoutError, Error); absent when it was not an Error */
  name?: string;
}

/** One request the mock API answered, timed by the judge when the report of it arrived. */
export interface ObservedRequest {
  atMs: number;
  method: string;
  /** null when the request got no answer (a timeout fault, or it was aborted) */
  status: number | null;
  fault?: string;
}

export interface CaseOutcome {
  ok: boolean;
  error?: CaseError;
  /** the output as JSON, when the call succeeded */
  outputJson?: string;
  budgetMs: number;
  requests: ObservedRequest[];
  /** the tool asked for more than MAX_FAULT_REQUESTS requests; the mock refused the rest */
  overLimit?: boolean;
}

export interface CaseVerdict {
  passed: boolean;
  /** why it failed, or (passed) anything worth knowing: a clean error, a check not exercised */
  detail?: string;
}

const CRASHES = new Set(['TypeError', 'ReferenceError', 'RangeError', 'SyntaxError', 'EvalError', 'URIError', 'InternalError']);
const clip = (text: string, max = 300) => (text.length > max ? `${text.slice(0, max)}…` : text);
const pass = (detail?: string): CaseVerdict => ({ passed: true, ...(detail ? { detail } : {}) });
const fail = (detail: string): CaseVerdict => ({ passed: false, detail });

/** An error that is not the tool's own (the judge's or the runner's), in words. */
function judgedError(error: CaseError, budgetMs: number): string {
  switch (error.code) {
    case 'TIMEOUT':
      return `it did not finish within ${budgetMs} ms: it hangs or waits too long (bound every wait, honour ctx.signal)`;
    case 'OUTPUT_INVALID':
      // "<tool> returned output that does not match its output schema: word: Too small…": the issues are the news.
      return `its output breaks its own output schema: ${clip(error.message.replace(/^.*? does not match its output schema: /, ''))}`;
    case 'RESULT_NOT_SERIALIZABLE':
    case 'RESULT_TOO_LARGE':
    case 'RESULT_TOO_DEEP':
      return `its output cannot be carried (${error.code}): ${clip(error.message)}`;
    default:
      return `${error.code}: ${clip(error.message)}`;
  }
}

/**
 * Why an error is not a clean one, or undefined when it is. Clean: an Error the tool threw (or let
 * through) on purpose, with a message. A TypeError or RangeError is a bug met on the way, not a
 * refusal; `allowSyntaxError` admits JSON.parse's SyntaxError where malformed JSON is the fault.
 */
export function uncleanError(error: CaseError, budgetMs: number, opts: { allowSyntaxError?: boolean } = {}): string | undefined {
  if (error.code !== 'TOOL_THREW') return judgedError(error, budgetMs);
  if (!error.name) {
    return `it threw a value that is not an Error (${clip(error.message, 120)}): throw new Error('<what went wrong and what would fix it>')`;
  }
  if (CRASHES.has(error.name) && !(opts.allowSyntaxError && error.name === 'SyntaxError')) {
    return `it crashed with ${error.name}: ${clip(error.message)} — a bug, not an error it meant to throw: handle this input, or throw an Error that says what is wrong with it`;
  }
  if (!error.message.trim()) return `it threw ${error.name} without a message: say what went wrong and what would fix it`;
  return undefined;
}

/** A generated input: valid output (the judge checked it against the schema) or a clean error. */
export function judgeInputCase(outcome: CaseOutcome): CaseVerdict {
  if (outcome.ok) return pass();
  const error = outcome.error ?? { code: 'TOOL_FAILED', message: 'the call failed without saying why' };
  // zod refinements JSON Schema cannot carry: the tool's own schema refusing the input is a clean refusal.
  if (error.code === 'INPUT_INVALID') return pass(`refused by its own input schema: ${clip(error.message, 200)}`);
  const problem = uncleanError(error, outcome.budgetMs);
  return problem ? fail(problem) : pass(`a clean error: ${clip(error.message, 200)}`);
}

function statuses(requests: ObservedRequest[]): string {
  const list = requests.map((r) => (r.status === null ? 'no answer' : String(r.status)));
  return list.length > 6 ? `${list.slice(0, 6).join(', ')}, …` : list.join(', ');
}

const TIMEOUT_WORDS = /time[sd]?[\s-]?out|timeout|abort|deadline/i;
const MALFORMED_WORDS = /json|malformed|pars/i;

/**
 * A fault check, from the requests the mock saw and how the call ended. `baseline` is the same
 * input without the fault: whether it succeeded, and its output.
 */
export function judgeFaultCase(check: FaultCheck, outcome: CaseOutcome, baseline: { ok: boolean; outputJson?: string }): CaseVerdict {
  const { requests } = outcome;
  const error = outcome.error ?? { code: 'TOOL_FAILED', message: 'the call failed without saying why' };
  const message = clip(error.message, 200);
  if (!requests.length) {
    if (!outcome.ok && error.code === 'TIMEOUT') return fail(judgedError(error, outcome.budgetMs));
    return pass('not exercised: this input sent no request to the API');
  }
  if (outcome.overLimit) {
    return fail(
      `it kept retrying: Forge's mock refused it after ${MAX_FAULT_REQUESTS} requests (answers: ${statuses(requests)}); retry a bounded number of times (e.g. 3 attempts in all), then throw`,
    );
  }
  if (!outcome.ok && error.code === 'TIMEOUT') {
    return fail(
      `it did not give up within ${outcome.budgetMs} ms (${requests.length} request${requests.length === 1 ? '' : 's'}, answers: ${statuses(requests)}): bound the retries and the waits`,
    );
  }
  switch (check.kind) {
    case 'rate_limit': {
      const at = requests.findIndex((r) => r.status === 429);
      if (at < 0) return pass('not exercised: no request got the 429');
      const limited = requests[at]!;
      const next = requests[at + 1];
      const seconds = check.fault.retryAfter ?? RETRY_AFTER_S;
      if (!next) {
        return fail(
          `it did not retry after a 429 with Retry-After: ${seconds}${outcome.ok ? '' : ` (it failed with: ${message})`}: wait the Retry-After seconds, then retry`,
        );
      }
      const gap = Math.round(next.atMs - limited.atMs);
      if (gap < seconds * 1000 - RETRY_AFTER_SLACK_MS) {
        return fail(
          `it retried ${gap} ms after a 429 whose Retry-After asked for ${seconds} s: wait the Retry-After header's seconds before retrying`,
        );
      }
      if (outcome.ok) return pass(`waited ${gap} ms, as Retry-After asked, and retried`);
      if (baseline.ok) return fail(`it waited and retried, then failed where the same input succeeds without the 429: ${message}`);
      const problem = uncleanError(error, outcome.budgetMs);
      return problem ? fail(problem) : pass(`waited ${gap} ms and retried; a clean error, as without the 429: ${message}`);
    }
    case 'server_error': {
      const status = check.fault.status ?? SERVER_ERROR_STATUS;
      if (outcome.ok) {
        return fail(
          `it returned output although every request was answered ${status}: a 5xx must end in an error after a bounded retry, not in output made up without the API`,
        );
      }
      const problem = uncleanError(error, outcome.budgetMs);
      if (problem) return fail(problem);
      if (requests.length < 2) {
        return fail(
          `it gave up after one request answered ${status}: retry a 5xx a bounded number of times (e.g. 3 attempts in all), then throw`,
        );
      }
      if (!error.message.includes(String(status))) return fail(`its error does not name the status ${status}: "${message}"`);
      return pass(`${requests.length} attempts, then: ${message}`);
    }
    case 'timeout': {
      if (outcome.ok) return fail('it returned output although every request timed out: a timeout must end in an error');
      const problem = uncleanError(error, outcome.budgetMs);
      if (problem) return fail(problem);
      if (error.name === 'TimeoutError' || error.name === 'AbortError' || TIMEOUT_WORDS.test(error.message)) return pass(message);
      return fail(`its error does not say the request timed out: "${message}" (let the TimeoutError through, or name the timeout)`);
    }
    case 'malformed_json': {
      if (outcome.ok) {
        if (baseline.ok && outcome.outputJson === baseline.outputJson) return pass('its output does not depend on the response body');
        return fail(
          'it returned output although the API answered malformed JSON: reject a body that does not parse instead of passing garbage on',
        );
      }
      const problem = uncleanError(error, outcome.budgetMs, { allowSyntaxError: true });
      if (problem) return fail(problem);
      if (!MALFORMED_WORDS.test(error.message)) return fail(`its error does not say the response was malformed JSON: "${message}"`);
      return pass(message);
    }
  }
}

/** One case of the report the runner returns to the host. */
export const checkCaseSchema = z.object({
  name: z.string(),
  kind: z.enum(['input', 'fault']),
  /** the input, as one short line (domain/input-gen.ts describeInput) */
  input: z.string(),
  passed: z.boolean(),
  detail: z.string().optional(),
  durationMs: z.number().min(0),
  /** fault checks: how many requests reached the mock API */
  requests: z.number().int().min(0).optional(),
});
export type CheckCase = z.infer<typeof checkCaseSchema>;

export const checksReportSchema = z.object({
  seed: z.number().int(),
  cases: z.array(checkCaseSchema).max(64),
  /** why no (or not every) case could run, when that is so */
  problem: z.string().optional(),
});
export type ChecksReport = z.infer<typeof checksReportSchema>;
