/**
 * The LLM layer: every model call Forge makes goes through `createLlm(...).structured()`,
 * which forces a tool call whose input is checked with zod, re-asks with the validation error
 * when it does not fit (harness.policy.llm.reasks times), meters tokens and cost, and turns API failures
 * into LlmCallErrors (retryable or not, with the delay the API asked for), which the activity
 * layer hands to Temporal. The SDK's own retries are off: Temporal's activity retry policy does
 * the retrying, so every attempt is visible in the workflow history.
 *
 * Offline (tests, demo), ANTHROPIC_BASE_URL points at scripted-model/server.ts, which
 * speaks the same API, so this code path is the same one production runs.
 */
import Anthropic, { AnthropicError, APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from '@anthropic-ai/sdk';
import { z } from 'zod';
import type { AgentMessage, AgentTurn, OfferedTool } from '../../domain/agent.ts';
import { clause, InvalidInputError, LlmCallError, LlmOutputError } from '../../domain/errors.ts';
import { classifyLlmFailure, LLM_NO_SCENARIO_RULE, noScenarioRuleMessage, SCRIPTED_NO_RULE_HEADER } from '../../domain/llm-retry.ts';
import { estimateCost } from '../../domain/pricing.ts';
import { harness, type PromptedCall } from '../../harness/index.ts';
import type { Sql } from '../db.ts';
import { log as rootLog } from '../log.ts';

const log = rootLog.child({ component: 'llm' });

export const llmUsageSchema = z.object({
  purpose: z.string(),
  model: z.string(),
  inputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
  cacheCreationTokens: z.number().int().min(0),
  cacheReadTokens: z.number().int().min(0),
  costUsd: z.number().min(0),
  /** The price-table family used for costUsd. */
  pricedAs: z.enum(['opus', 'sonnet', 'haiku']),
  /** Set when the model was not in the price table, so the cost is a guess. */
  priceNote: z.string().optional(),
  workflowId: z.string().optional(),
  activityId: z.string().optional(),
});
export type LlmUsage = z.infer<typeof llmUsageSchema>;

export interface LlmOptions {
  /** Without a key, baseURL must point at a server that needs none (the scripted model). */
  apiKey?: string;
  baseURL?: string;
  /** baseURL is Forge's scripted model (no ANTHROPIC_API_KEY): a failure to reach it says so, so the fix named is `forge up` */
  scripted?: boolean;
  model: string;
  /** Called once per HTTP call that returned a reply (billed), including replies that failed validation. */
  recordUsage?: (u: LlmUsage) => Promise<void>;
  /** Per HTTP request; the activity's startToCloseTimeout should be a bit longer. Default 5 minutes. */
  timeoutMs?: number;
  /** Who is calling (metered with each call) and the signal that cancels it; the activity layer supplies it. */
  scope?: () => LlmScope;
}

export interface LlmScope {
  workflowId?: string;
  activityId?: string;
  signal?: AbortSignal;
}

export interface StructuredRequest<T> {
  /** Short label for metering and scenario matching, e.g. "plan_task". Sent as the x-forge-purpose header. */
  purpose: string;
  /** Static instructions; sent with cache_control so repeated calls hit the prompt cache. */
  system: string;
  /** The dynamic part of the prompt. */
  prompt: string;
  schema: z.ZodType<T>;
  toolName: string;
  toolDescription: string;
  maxTokens?: number;
}

/** A request for one of the harness's prompted calls: the harness phrases it, the caller names its purpose and reply schema. */
export function promptedRequest<In, T>(
  call: PromptedCall<In>,
  input: In,
  reply: { purpose: string; schema: z.ZodType<T> },
): StructuredRequest<T> {
  return {
    purpose: reply.purpose,
    system: call.system,
    prompt: call.user(input),
    schema: reply.schema,
    toolName: call.tool.name,
    toolDescription: call.tool.description,
    maxTokens: call.maxTokens,
  };
}

export interface StructuredResult<T> {
  value: T;
  /** Summed over the attempts (one, plus one per re-ask when a reply did not validate). */
  usage: LlmUsage;
}

/** One turn of a tool-use conversation: the model answers in words, calls tools, or both. */
export interface ConverseRequest {
  purpose: string;
  /** Static instructions, cached with the tool definitions as one prefix. */
  system: string;
  messages: AgentMessage[];
  tools: OfferedTool[];
  maxTokens?: number;
}

export interface ConverseResult {
  turn: AgentTurn;
  usage: LlmUsage;
}

export interface Llm {
  readonly model: string;
  structured<T>(req: StructuredRequest<T>): Promise<StructuredResult<T>>;
  converse(req: ConverseRequest): Promise<ConverseResult>;
}

/** The tool's input_schema: the JSON Schema of what the model must produce (zod's input side). */
export function toolInputSchema(schema: z.ZodType): Anthropic.Tool.InputSchema {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  if (json.type !== 'object') {
    throw new InvalidInputError('structured output schema', `a tool input must be a JSON object schema, got type ${String(json.type)}`);
  }
  return json as Anthropic.Tool.InputSchema;
}

function headersOf(h: Headers | undefined): Record<string, string> {
  return h ? Object.fromEntries(h.entries()) : {};
}

/**
 * Turns an SDK failure into an LlmCallError that says whether to retry and when. Cancellation and
 * unknown errors pass through unchanged (Temporal then applies its default handling).
 */
export function toLlmCallError(
  err: unknown,
  call: { purpose: string; model: string; endpoint?: { url: string; scripted: boolean } },
): unknown {
  if (err instanceof LlmCallError || err instanceof APIUserAbortError) return err;
  const what = `LLM call "${call.purpose}" to ${call.model}`;
  if (err instanceof APIConnectionError) {
    const d = classifyLlmFailure({ timedOut: err instanceof APIConnectionTimeoutError });
    // Where it could not reach: the worker's endpoint, which a surface names in its fix (the CLI's own settings may differ).
    return new LlmCallError(`${what} failed: ${clause(err.message)}. ${d.hint}`, d.failureType, true, undefined, call.endpoint, {
      cause: err,
    });
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const headers = headersOf(err.headers);
    const apiMessage = err.apiMessage ?? err.message;
    if (headers[SCRIPTED_NO_RULE_HEADER]) {
      // The scripted model's body (every scenario file, the request's text) is ~1 kB: a person reads
      // one line and the fix; the whole body stays in the failure's details and the worker's log. No
      // SDK error as the cause: a task's error is its failure's root cause, which would be that body.
      log.warn('the scripted model has no rule for a request', { purpose: call.purpose, detail: apiMessage });
      return new LlmCallError(noScenarioRuleMessage(call.purpose), LLM_NO_SCENARIO_RULE, false, undefined, {
        status: err.status,
        purpose: call.purpose,
        detail: apiMessage,
      });
    }
    const d = classifyLlmFailure({ status: err.status, headers });
    return new LlmCallError(
      `${what} failed with HTTP ${err.status}${err.type ? ` ${err.type}` : ''}: ${clause(apiMessage)}. ${d.hint}`,
      d.failureType,
      d.retryable,
      d.delayMs,
      { status: err.status, errorType: err.type, requestId: err.requestID ?? undefined, hint: d.hint },
      { cause: err },
    );
  }
  if (err instanceof AnthropicError) {
    // Raised by the SDK before sending (bad options, missing credentials): retrying cannot help.
    return new LlmCallError(`${what} could not be sent: ${err.message}`, 'LlmClientError', false, undefined, undefined, { cause: err });
  }
  return err;
}

type Reply = Anthropic.Message;

function usageOf(reply: Reply, purpose: string, fallbackModel: string, scope: LlmScope): LlmUsage {
  const model = reply.model || fallbackModel;
  const tokens = {
    inputTokens: reply.usage.input_tokens,
    outputTokens: reply.usage.output_tokens,
    cacheCreationTokens: reply.usage.cache_creation_input_tokens ?? 0,
    cacheReadTokens: reply.usage.cache_read_input_tokens ?? 0,
  };
  const cost = estimateCost(model, tokens);
  return { purpose, model, ...tokens, ...cost, workflowId: scope.workflowId, activityId: scope.activityId };
}

function addUsage(a: LlmUsage, b: LlmUsage): LlmUsage {
  return {
    ...b,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheCreationTokens: a.cacheCreationTokens + b.cacheCreationTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    costUsd: Math.round((a.costUsd + b.costUsd) * 1e6) / 1e6,
  };
}

type Checked<T> = { ok: true; value: T } | { ok: false; issues: string; raw: string };

/**
 * The most characters a reply may hold per max_tokens token: a token is about 4 characters, and 10
 * leaves room for escapes and scripts that tokenise poorly. A bigger reply did not come from a model
 * honouring max_tokens (a misbehaving proxy or scenario), and would swell the workflow history it is
 * about to enter (Temporal refuses payloads over 2 MB): it is refused by name instead.
 */
export const MAX_REPLY_CHARS_PER_TOKEN = 10;

/** Why a reply is too big to accept, or undefined when it is not. */
function oversized(value: unknown, maxTokens: number): string | undefined {
  const size = (JSON.stringify(value) ?? '').length;
  const limit = maxTokens * MAX_REPLY_CHARS_PER_TOKEN;
  if (size <= limit) return undefined;
  return `the reply is ${size} characters, over the ${limit} a reply of max_tokens=${maxTokens} can hold: answer in fewer words`;
}

/** Finds the forced tool call in a reply and validates its input. */
function checkReply<T>(reply: Reply, req: StructuredRequest<T>, maxTokens: number): Checked<T> {
  const call = reply.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use' && b.name === req.toolName);
  const cutOff = reply.stop_reason === 'max_tokens' ? ` (the reply was cut off at max_tokens=${maxTokens}; raise maxTokens)` : '';
  if (!call) {
    const text = reply.content.map((b) => (b.type === 'text' ? b.text : `[${b.type}]`)).join('\n');
    return { ok: false, issues: `the reply did not call ${req.toolName} (stop_reason ${reply.stop_reason})${cutOff}`, raw: text };
  }
  const tooBig = oversized(call.input, maxTokens);
  if (tooBig) return { ok: false, issues: tooBig, raw: JSON.stringify(call.input).slice(0, 2000) };
  const parsed = req.schema.safeParse(call.input);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, issues: z.prettifyError(typeFirst(parsed.error)) + cutOff, raw: JSON.stringify(call.input) };
}

/**
 * A field of the wrong type also fails the checks meant for the right one ("expected string,
 * received array" then "expected array to have >=20 items"): only the type is said for it, so the
 * model (and a person reading the error) is told one thing to fix.
 */
function typeFirst(error: z.ZodError): z.ZodError {
  const key = (i: z.core.$ZodIssue) => JSON.stringify(i.path);
  const mistyped = new Set(error.issues.filter((i) => i.code === 'invalid_type').map(key));
  return new z.ZodError(error.issues.filter((i) => i.code === 'invalid_type' || !mistyped.has(key(i))));
}

/** The turn that tells the model what was wrong: a tool_result with is_error, or plain text when it called no tool. */
function correction(reply: Reply, toolName: string, issues: string): Anthropic.MessageParam[] {
  const note = harness.prompts.reask(toolName, issues);
  const assistant: Anthropic.ContentBlockParam[] = reply.content.flatMap((b): Anthropic.ContentBlockParam[] => {
    if (b.type === 'text') return b.text ? [{ type: 'text', text: b.text }] : [];
    if (b.type === 'tool_use') return [{ type: 'tool_use', id: b.id, name: b.name, input: b.input }];
    return [];
  });
  const toolUses = assistant.filter((b): b is Anthropic.ToolUseBlockParam => b.type === 'tool_use');
  const user: Anthropic.ContentBlockParam[] = toolUses.length
    ? toolUses.map((t) => ({ type: 'tool_result', tool_use_id: t.id, is_error: true, content: note }))
    : [{ type: 'text', text: note }];
  return [...(assistant.length ? [{ role: 'assistant' as const, content: assistant }] : []), { role: 'user', content: user }];
}

export function createLlm(opts: LlmOptions): Llm {
  if (!opts.apiKey && !opts.baseURL) {
    throw new InvalidInputError(
      'LLM configuration',
      'no API key and no base URL: set ANTHROPIC_API_KEY, or ANTHROPIC_BASE_URL to a scripted model server',
    );
  }
  const client = new Anthropic({
    // The scripted model ignores the key; a placeholder keeps the SDK from searching for credentials elsewhere.
    apiKey: opts.apiKey ?? 'scripted-model-needs-no-key',
    baseURL: opts.baseURL,
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 5 * 60_000,
  });

  const endpoint = { url: opts.baseURL ?? 'https://api.anthropic.com', scripted: opts.scripted ?? false };

  async function record(u: LlmUsage): Promise<void> {
    log.info('llm call', { ...u });
    if (!opts.recordUsage) return;
    try {
      await opts.recordUsage(u);
    } catch (err) {
      // The call is already paid for; failing now would make Temporal pay for it again.
      log.error('could not record LLM usage', { purpose: u.purpose, error: (err as Error).message });
    }
  }

  async function send(
    req: StructuredRequest<unknown>,
    messages: Anthropic.MessageParam[],
    maxTokens: number,
    scope: LlmScope,
  ): Promise<Reply> {
    try {
      return await client.messages.create(
        {
          model: opts.model,
          max_tokens: maxTokens,
          system: [{ type: 'text', text: req.system, cache_control: { type: 'ephemeral' } }],
          tools: [{ name: req.toolName, description: req.toolDescription, input_schema: toolInputSchema(req.schema) }],
          tool_choice: { type: 'tool', name: req.toolName },
          messages,
        },
        { headers: { 'x-forge-purpose': req.purpose }, signal: scope.signal },
      );
    } catch (err) {
      throw toLlmCallError(err, { purpose: req.purpose, model: opts.model, endpoint });
    }
  }

  async function structured<T>(req: StructuredRequest<T>): Promise<StructuredResult<T>> {
    const scope = opts.scope?.() ?? {};
    const maxTokens = req.maxTokens ?? 4096;
    const { reasks } = harness.policy.llm;
    let messages: Anthropic.MessageParam[] = [{ role: 'user', content: req.prompt }];
    let usage: LlmUsage | undefined;

    for (let attempt = 0; ; attempt++) {
      const reply = await send(req, messages, maxTokens, scope);
      const replyUsage = usageOf(reply, req.purpose, opts.model, scope);
      await record(replyUsage);
      usage = usage ? addUsage(usage, replyUsage) : replyUsage;
      const checked = checkReply(reply, req, maxTokens);
      if (checked.ok) return { value: checked.value, usage };
      if (attempt >= reasks) throw new LlmOutputError(req.purpose, checked.issues, checked.raw);

      log.warn('llm reply did not validate; asking again with the error', {
        purpose: req.purpose,
        issues: checked.issues,
        reask: attempt + 1,
        of: reasks,
      });
      messages = [...messages, ...correction(reply, req.toolName, checked.issues)];
    }
  }

  async function converse(req: ConverseRequest): Promise<ConverseResult> {
    const scope = opts.scope?.() ?? {};
    const tools: Anthropic.Tool[] = req.tools.map((t, i) => ({
      name: t.name,
      description: t.description,
      input_schema: { type: 'object', ...t.inputSchema } as Anthropic.Tool.InputSchema,
      // The system prompt and the tools are the stable prefix of every turn: cache up to the last tool.
      ...(i === req.tools.length - 1 ? { cache_control: { type: 'ephemeral' as const } } : {}),
    }));
    let reply: Reply;
    try {
      reply = await client.messages.create(
        {
          model: opts.model,
          max_tokens: req.maxTokens ?? 4096,
          system: [{ type: 'text', text: req.system, cache_control: { type: 'ephemeral' } }],
          tools,
          tool_choice: { type: 'auto' },
          messages: req.messages as Anthropic.MessageParam[],
        },
        { headers: { 'x-forge-purpose': req.purpose }, signal: scope.signal },
      );
    } catch (err) {
      throw toLlmCallError(err, { purpose: req.purpose, model: opts.model, endpoint });
    }
    const usage = usageOf(reply, req.purpose, opts.model, scope);
    await record(usage);
    const content = reply.content.flatMap((b): AgentTurn['content'] => {
      if (b.type === 'text') return b.text ? [{ type: 'text', text: b.text }] : [];
      if (b.type === 'tool_use') return [{ type: 'tool_use', id: b.id, name: b.name, input: b.input }];
      return [];
    });
    // A turn has no schema to re-ask against: an oversized one fails the turn, named, before it enters the transcript.
    const tooBig = oversized(content, req.maxTokens ?? 4096);
    if (tooBig) throw new LlmOutputError(req.purpose, tooBig, JSON.stringify(content));
    const tokens = { input: usage.inputTokens + usage.cacheCreationTokens + usage.cacheReadTokens, output: usage.outputTokens };
    return { turn: { stopReason: reply.stop_reason ?? 'end_turn', content, tokens }, usage };
  }

  return { model: opts.model, structured, converse };
}

/** A recordUsage callback that meters each call into llm_calls (infra/migrations/010_llm_calls.sql). */
export function recordLlmUsage(sql: Sql): (u: LlmUsage) => Promise<void> {
  // No idempotency key on purpose: every row is one billed HTTP call, and a retried
  // activity really does pay again.
  return async (u) => {
    await sql`
      insert into llm_calls (workflow_id, activity_id, purpose, model, input_tokens, output_tokens,
                             cache_creation_tokens, cache_read_tokens, cost_usd, priced_as, price_note)
      values (${u.workflowId ?? null}, ${u.activityId ?? null}, ${u.purpose}, ${u.model}, ${u.inputTokens}, ${u.outputTokens},
              ${u.cacheCreationTokens}, ${u.cacheReadTokens}, ${u.costUsd}, ${u.pricedAs}, ${u.priceNote ?? null})`;
  };
}
