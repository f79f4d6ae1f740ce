import { z } from 'zod';

/**
 * Scenario files: what the scripted model server (scripted-model/server.ts) answers to
 * Messages API requests, so tests and the offline demo run the real SDK code path without
 * the real API. Pure: schema, pattern matching and response selection, no I/O.
 * The format is documented with examples in docs/scenarios.md.
 *
 *   { "name": "demo", "description": "...", "rules": [
 *     { "name": "plan", "match": { "tool": "submit_plan", "user": "/Task:\\s*(.+)/" },
 *       "responses": [ { "tool_use": { "name": "submit_plan", "input": { "summary": "{{user.1}}", ... } } } ] } ] }
 *
 * Rules are tried in order (files in the order given, rules in file order); the first rule
 * whose every `match` field fits and that has a response left answers. Each rule hands out
 * its responses in order; with `repeat` (the default) the last one then repeats forever,
 * without it the rule is spent and later rules get their turn.
 */

/** "/body/flags" is a regular expression; anything else is a plain string. */
const regexLiteral = /^\/(.+)\/([imsuvd]*)$/s;

export function compilePattern(pattern: string): RegExp | string {
  const m = regexLiteral.exec(pattern);
  return m ? new RegExp(m[1]!, m[2]) : pattern;
}

const patternSchema = z
  .string()
  .min(1)
  .superRefine((p, ctx) => {
    try {
      compilePattern(p);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` });
    }
  });

export const scenarioMatchSchema = z
  .strictObject({
    system: patternSchema.describe('substring of (or /regex/ on) the system prompt text'),
    user: patternSchema.describe('substring of (or /regex/ on) the last user message: its text and tool_result text'),
    first: patternSchema.describe('substring of (or /regex/ on) the first user message (in a conversation: the task)'),
    document: patternSchema.describe(
      "substring of (or /regex/ on) the first user message's document blocks: each one's title and text (e.g. a session's earlier exchanges)",
    ),
    tool: patternSchema.describe('name of the forced tool (tool_choice), or of any offered tool when none is forced'),
    model: patternSchema.describe('the requested model name'),
    purpose: patternSchema.describe('the x-forge-purpose request header Forge sends with every call'),
  })
  .partial();

const tokens = z.number().int().min(0);
export const scenarioUsageSchema = z
  .strictObject({
    input_tokens: tokens,
    output_tokens: tokens,
    cache_creation_input_tokens: tokens,
    cache_read_input_tokens: tokens,
  })
  .partial();

const toolInputSchema = z.record(z.string(), z.unknown());

/** Raw content blocks are passed through; only the `type` is checked, and tool_use gets an id if it has none. */
const rawBlockSchema = z.looseObject({ type: z.string().min(1) });

export const scenarioErrorSchema = z.strictObject({
  status: z.number().int().min(400).max(599),
  /** Anthropic error type; defaults from the status (429 → rate_limit_error, 529 → overloaded_error, ...). */
  type: z.string().min(1).optional(),
  message: z.string().min(1),
  headers: z.record(z.string(), z.string()).optional(),
});

const responseKinds = ['text', 'tool_use', 'content', 'error'] as const;

export const scenarioResponseSchema = z
  .strictObject({
    text: z.string(),
    tool_use: z.strictObject({ name: z.string().min(1), input: toolInputSchema, id: z.string().min(1).optional() }),
    content: z.array(rawBlockSchema).min(1),
    error: scenarioErrorSchema,
    stop_reason: z.enum(['end_turn', 'tool_use', 'max_tokens', 'stop_sequence', 'refusal', 'pause_turn']),
    usage: scenarioUsageSchema,
    delay_ms: z.number().int().min(0).max(600_000),
  })
  .partial()
  .superRefine((r, ctx) => {
    const kinds = responseKinds.filter((k) => r[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `a response needs exactly one of ${responseKinds.join(', ')}; this one has ${kinds.length ? kinds.join(' and ') : 'none'}`,
      });
    }
  });

export const scenarioRuleSchema = z.strictObject({
  name: z.string().min(1).optional(),
  match: scenarioMatchSchema.default({}),
  responses: z.array(scenarioResponseSchema).min(1),
  repeat: z.boolean().default(true),
});

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  rules: z.array(scenarioRuleSchema).min(1),
});

export type Scenario = z.infer<typeof scenarioSchema>;
/** What a person writes (defaults not yet applied). */
export type ScenarioInput = z.input<typeof scenarioSchema>;
export type ScenarioRule = z.infer<typeof scenarioRuleSchema>;
export type ScenarioResponse = z.infer<typeof scenarioResponseSchema>;
export type ScenarioMatch = z.infer<typeof scenarioMatchSchema>;

/** The parts of a Messages API request that rules match against. */
export interface RequestFacts {
  system: string;
  user: string;
  /** The first user message: in a multi-turn conversation, the task itself. */
  first: string;
  /** The first user message's document blocks (reference material the task came with), title and text each; absent = none. */
  document?: string;
  /** The forced tool, or all offered tools when none is forced. */
  tools: string[];
  model: string;
  purpose?: string;
}

/** Capture groups of the `user`, `first`, `document` and `system` patterns, for {{user.N}} / {{first.N}} / {{document.N}} / {{system.N}} in responses. */
export interface Captures {
  user: string[];
  first: string[];
  document: string[];
  system: string[];
}

function find(pattern: string, text: string): string[] | undefined {
  const p = compilePattern(pattern);
  if (typeof p === 'string') return text.includes(p) ? [p] : undefined;
  const m = p.exec(text);
  return m ? Array.from(m, (g) => g ?? '') : undefined;
}

/** Tool, model and purpose compare whole values (a regex still may match a part). */
function equals(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  const p = compilePattern(pattern);
  return typeof p === 'string' ? p === value : p.test(value);
}

/** Returns the captures when every given match field fits, undefined otherwise. */
export function matchRule(match: ScenarioMatch, facts: RequestFacts): Captures | undefined {
  const captures: Captures = { user: [], first: [], document: [], system: [] };
  if (match.user !== undefined) {
    const got = find(match.user, facts.user);
    if (!got) return undefined;
    captures.user = got;
  }
  if (match.first !== undefined) {
    const got = find(match.first, facts.first);
    if (!got) return undefined;
    captures.first = got;
  }
  if (match.document !== undefined) {
    const got = find(match.document, facts.document ?? '');
    if (!got) return undefined;
    captures.document = got;
  }
  if (match.system !== undefined) {
    const got = find(match.system, facts.system);
    if (!got) return undefined;
    captures.system = got;
  }
  if (match.tool !== undefined && !facts.tools.some((t) => equals(match.tool!, t))) return undefined;
  if (match.model !== undefined && !equals(match.model, facts.model)) return undefined;
  if (match.purpose !== undefined && !equals(match.purpose, facts.purpose)) return undefined;
  return captures;
}

/** Replaces {{user.N}}, {{first.N}}, {{document.N}} and {{system.N}} in every string of a response with capture group N (0 = the whole match). */
export function interpolate<T>(value: T, captures: Captures): T {
  const fill = (s: string) =>
    s.replace(
      /\{\{\s*(user|first|document|system)\.(\d+)\s*\}\}/g,
      (_, which: keyof Captures, n: string) => captures[which][Number(n)] ?? '',
    );
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return fill(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/**
 * Picks the response for a request: the first rule that matches and has a response left.
 * `used[i]` counts the responses rule i has handed out; the caller keeps it between requests.
 */
export function selectResponse(
  rules: readonly ScenarioRule[],
  used: number[],
  facts: RequestFacts,
): { ruleIndex: number; response: ScenarioResponse; captures: Captures } | undefined {
  for (const [i, rule] of rules.entries()) {
    const n = used[i] ?? 0;
    if (n >= rule.responses.length && !rule.repeat) continue;
    const captures = matchRule(rule.match, facts);
    if (!captures) continue;
    used[i] = n + 1;
    const response = rule.responses[Math.min(n, rule.responses.length - 1)]!;
    return { ruleIndex: i, response, captures };
  }
  return undefined;
}

/** The Anthropic error type the real API uses for a status, for error responses that do not name one. */
export function errorTypeFor(status: number): string {
  const byStatus: Record<number, string> = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    402: 'billing_error',
    403: 'permission_error',
    404: 'not_found_error',
    408: 'timeout_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    504: 'timeout_error',
    529: 'overloaded_error',
  };
  return byStatus[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}
