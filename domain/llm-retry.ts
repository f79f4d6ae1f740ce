/**
 * Which failed model calls are worth retrying, after how long, and what a person should
 * do about the rest. Pure: the LLM activity feeds it the HTTP status and headers and turns
 * the answer into a Temporal ApplicationFailure, so Temporal's retry policy (not the SDK)
 * does all the retrying and every attempt shows up in the workflow history.
 */
export interface RetryDecision {
  retryable: boolean;
  /** How long the server asked us to wait; undefined = let the retry policy's backoff decide. */
  delayMs?: number;
  /** ApplicationFailure type, so retry policies and dashboards can tell failures apart. */
  failureType: string;
  /** What a person should do (or what Temporal will do) about it. */
  hint: string;
}

export interface FailedCall {
  /** HTTP status; undefined when no response came back (connection refused, reset, timed out). */
  status?: number;
  /** Response headers with lower-case names. */
  headers?: Record<string, string>;
  /** True when the client gave up waiting, as opposed to the connection failing. */
  timedOut?: boolean;
}

/**
 * Parses `retry-after-ms` (milliseconds, Anthropic's own) or `retry-after` (seconds or an
 * HTTP date). Returns undefined when absent or unreadable; never negative.
 */
export function retryAfterMs(headers: Record<string, string> | undefined, now: Date = new Date()): number | undefined {
  if (!headers) return undefined;
  const ms = headers['retry-after-ms'];
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Math.ceil(Number(ms)));
  const ra = headers['retry-after']?.trim();
  if (!ra) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra)) return Math.ceil(Number(ra) * 1000);
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

/** The failure type of a model call that could not connect to the model server at all: a component down, not a bad reply. */
export const LLM_UNREACHABLE = 'LlmUnreachable';

/**
 * The response header Forge's scripted model marks a request with when no scenario rule answered it
 * (a 400 whose body lists every scenario file and the request's text): the client turns it into a
 * short error saying what to do, instead of that whole body as the task's or forge's error.
 */
export const SCRIPTED_NO_RULE_HEADER = 'x-forge-scripted-no-rule';

/** The failure type of a model call the scripted model had no scenario rule for (never retried: no rule appears on retry). */
export const LLM_NO_SCENARIO_RULE = 'LlmNoScenarioRule';

/** What a person reads for a call the scripted model had no rule for, and the two ways on. */
export function noScenarioRuleMessage(purpose: string): string {
  return `the scripted model has no scenario rule for this request (model call "${purpose}"); set ANTHROPIC_API_KEY for a real model, or add a rule to a scenario file (docs/scenarios.md)`;
}

/** Where the worker calls the model, as a failure to reach it carries it (the failure's details). */
export interface ModelEndpoint {
  url: string;
  /** Forge's scripted model (no ANTHROPIC_API_KEY) */
  scripted: boolean;
}

/** The endpoint in an unreachable call's failure details, as far as they say it. */
export function modelEndpointFrom(details: unknown): ModelEndpoint {
  const d = (details ?? {}) as Partial<ModelEndpoint>;
  return { url: typeof d.url === 'string' ? d.url : 'the model endpoint', scripted: d.scripted === true };
}

const retry = (failureType: string, hint: string): RetryDecision => ({ retryable: true, failureType, hint });
const stop = (failureType: string, hint: string): RetryDecision => ({ retryable: false, failureType, hint });

function byStatus(status: number | undefined, timedOut: boolean): RetryDecision {
  if (status === undefined) {
    return timedOut
      ? retry('LlmTimeout', 'the model server did not answer in time; Temporal will retry')
      : retry(LLM_UNREACHABLE, 'could not reach the model server; check ANTHROPIC_BASE_URL and the network. Temporal will retry');
  }
  switch (status) {
    case 400:
      return stop(
        'LlmRequestInvalid',
        'the API rejected the request: check FORGE_MODEL, max_tokens and the prompt (with the scripted model, check the scenario rules)',
      );
    case 401:
      return stop('LlmAuthFailed', 'the API key was refused: check ANTHROPIC_API_KEY (or unset it to use the offline scripted model)');
    case 402:
      return stop('LlmBilling', 'the account cannot be billed: check the plan and credit balance in the Anthropic Console');
    case 403:
      return stop('LlmForbidden', "the API key may not use this model or feature: check the key's workspace permissions and FORGE_MODEL");
    case 404:
      return stop('LlmNotFound', 'model or endpoint not found: check FORGE_MODEL and ANTHROPIC_BASE_URL');
    case 408:
      return retry('LlmTimeout', 'the API timed out the request; Temporal will retry');
    case 409:
      return retry('LlmConflict', 'the API reported a conflict; Temporal will retry');
    case 413:
      return stop('LlmRequestTooLarge', 'the request is too large: shorten the prompt or its inputs');
    case 422:
      return stop('LlmRequestInvalid', 'the API could not process the request: check the prompt and parameters');
    case 429:
      return retry(
        'LlmRateLimited',
        'rate limited; Temporal will retry after the delay the API asked for. Persistent? Lower concurrency or raise the rate limit',
      );
    case 529:
      return retry('LlmOverloaded', 'the API is overloaded; Temporal will retry');
  }
  if (status >= 500) return retry('LlmServerError', `the API failed with ${status}; Temporal will retry`);
  return stop('LlmRequestRejected', `the API rejected the request with ${status}; it will not succeed on retry as is`);
}

export function classifyLlmFailure(call: FailedCall, now: Date = new Date()): RetryDecision {
  let decision = byStatus(call.status, call.timedOut ?? false);
  // The API can override the status-based guess; the official SDKs honour this header too.
  const should = call.headers?.['x-should-retry'];
  if (should === 'true' && !decision.retryable) {
    decision = { ...decision, retryable: true, hint: `the API answered ${call.status} but marked it retryable; Temporal will retry` };
  }
  if (should === 'false' && decision.retryable) {
    decision = {
      ...decision,
      retryable: false,
      hint: `the API answered ${call.status ?? 'nothing'} and marked it not retryable; try again later`,
    };
  }
  if (!decision.retryable) return decision;
  const delayMs = retryAfterMs(call.headers, now);
  return delayMs === undefined ? decision : { ...decision, delayMs };
}
