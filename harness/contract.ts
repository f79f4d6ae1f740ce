/**
 * The shape every evolvable harness file must fill, and the bounds its policy must stay within.
 * Fixed (see manifest.json): consumers are written against these types, so an evolved prompt or
 * policy can change what the agent says and decides, never what data it gets or hands back.
 */
import { z } from 'zod';
import type { DocumentBlock } from '../domain/agent.ts';
import { maxRepairsSchema, type ToolSpec } from '../domain/forge.ts';
import type { PartialApiSpec } from '../domain/openapi.ts';
import { qualityPolicySchema } from '../domain/quality.ts';
import { intentPolicySchema, lexicalPolicySchema, rankingPolicySchema } from '../domain/ranking.ts';
import type { SessionContext } from '../domain/session.ts';
import type { ApiSpec, ToolManifest } from '../domain/tool.ts';

/** One structured model call as the agent phrases it: the services add the purpose and the reply schema. */
export interface PromptedCall<In> {
  /** Static instructions, sent with cache_control: nothing call-specific, or the prompt cache misses. */
  system: string;
  /** The tool the model is forced to call. */
  tool: { name: string; description: string };
  /** The dynamic part of the prompt. */
  user(input: In): string;
  /** Output token budget; absent = the LLM client's default. */
  maxTokens?: number;
}

export interface SpecPromptInput {
  need: string;
  name?: string;
}

export interface ApiPromptInput {
  spec: ToolSpec;
  apiDocs?: string;
  /** derived deterministically from an OpenAPI document, when one was given */
  draft?: PartialApiSpec;
}

export interface TestsPromptInput {
  spec: ToolSpec;
  apiSpec: ApiSpec | null;
}

export interface ImplementationPromptInput extends TestsPromptInput {
  tests: string;
}

export interface RepairPromptInput extends ImplementationPromptInput {
  source: string;
  /** the verification report, formatted for repair */
  failures: string;
  attempt: number;
}

export interface RewritePromptInput {
  manifest: ToolManifest;
  apiSpec: ApiSpec | null;
  source: string;
  tests: string;
  /** why the cycle runs: the evaluator's reason, the task's diagnosis */
  reason: string;
  failures: { input: unknown; error: string }[];
  attempt: number;
  /** the gate's report on the previous attempt */
  previous?: string;
}

export interface DiagnosePromptInput {
  task: string;
  tool: string;
  version: number;
  input: unknown;
  error: string;
  source: string;
}

export interface EvolvePatchPromptInput {
  failureType: string;
  /** each case: what was expected, what happened, the trace */
  evidence: unknown[];
  /** the evolvable files, by path from the repository root */
  files: Record<string, string>;
  attempt: number;
  /** why the previous patch was refused */
  previous?: string;
}

export interface ApiCall extends PromptedCall<ApiPromptInput> {
  /** An OpenAPI draft as the prompt shows it, cut to maxChars (default: the prompt's own budget). */
  draft(draft: PartialApiSpec, maxChars?: number): string;
}

/** The agent loop's words: its instructions, how the task is put, and what its own tools are for. */
export interface AgentPrompt {
  system: string;
  task(task: string): string;
  /**
   * The session's earlier exchanges (forge run … --session <id>), sent as a document before the
   * task in the first user message: data the task may refer to ("that list"), never instructions.
   */
  session(context: SessionContext): DocumentBlock;
  metaTools: { search: string; forge: string; ask: string };
  /** output token budget per turn */
  maxTokens: number;
}

export interface Prompts {
  agent: AgentPrompt;
  forge: {
    spec: PromptedCall<SpecPromptInput>;
    api: ApiCall;
    tests: PromptedCall<TestsPromptInput>;
    implementation: PromptedCall<ImplementationPromptInput>;
    repair: PromptedCall<RepairPromptInput>;
  };
  /** the improve cycle's rewriter, and the task's diagnosis of a failed call */
  improve: {
    rewrite: PromptedCall<RewritePromptInput>;
    diagnose: PromptedCall<DiagnosePromptInput>;
  };
  /** the evolve cycle's coding agent (a fixed file: it may not rewrite its own instructions) */
  evolve: { patch: PromptedCall<EvolvePatchPromptInput> };
  /** What the model is told when its reply did not fit the schema, before it is asked again. */
  reask(toolName: string, issues: string): string;
}

/** A duration as Temporal reads it ('1 hour', '30 minutes', '90s'). */
const durationSchema = z
  .string()
  .regex(/^\d+(\.\d+)?\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$/i);

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A duration as Temporal reads the text ("15 minutes", "1h"), in milliseconds. */
export function durationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(text.trim());
  if (!m) return Number.NaN;
  const unit = m[2]!.toLowerCase();
  const key = unit === 'ms' || unit.startsWith('milli') ? 'ms' : unit[0]!;
  return Number(m[1]) * (UNIT_MS[key] ?? Number.NaN);
}

/**
 * How long a task may wait for a person: at least a minute (a person must have time to read the
 * request) and at most a week (a task waiting longer holds its worker version and its session).
 * A patched policy cannot stretch a wait past that.
 */
const personWaitSchema = durationSchema.refine(
  (d) => durationMs(d) >= 60_000 && durationMs(d) <= 7 * 86_400_000,
  'a wait for a person is between 1 minute and 7 days',
);

/**
 * The decision policy and its bounds. The bounds are not evolvable: the ranking and lexical ones
 * are domain/ranking.ts's, the repair cap is the forge request's (domain/forge.ts), and the rest
 * keep a mistaken value from costing money (re-asks are billed calls) or meaning nothing; the quality
 * evaluator's are domain/quality.ts's.
 */
export const policySchema = z.strictObject({
  ranking: rankingPolicySchema,
  lexical: lexicalPolicySchema,
  retrieval: z.strictObject({
    /** meaning, when an embedder is configured: harness/policy/ranking.ts retrieval.dense */
    dense: z.strictObject({
      weight: z.number().min(0).max(1),
      center: z.number().min(0).max(1),
      nearest: z.number().int().min(0).max(100),
    }),
    /** how many search hits the reuse-or-forge decision looks at, and an agent turn is offered at most */
    candidates: z.number().int().min(1).max(50),
    /** the similarity below which a hit is not offered to an agent turn at all */
    offerAt: z.number().min(0).max(1),
    /** the vocabulary that tells what a request wants done (read, delete, restart, …): domain/ranking.ts actionIntent */
    intent: intentPolicySchema,
  }),
  forge: z.strictObject({ maxRepairs: maxRepairsSchema }),
  llm: z.strictObject({
    /** times a reply that does not fit its schema is sent back with the error, before the call fails */
    reasks: z.number().int().min(0).max(3),
  }),
  approval: z.strictObject({
    /** how long a task waits for a person to confirm reusing a tool that only probably fits */
    confirmReuseWait: personWaitSchema,
    /** how long a task waits for a person to approve a write or destructive call */
    callWait: personWaitSchema,
    /** how long a task waits on a failure it escalated (approve: retry the call; reject or silence: go on without it) */
    escalationWait: personWaitSchema,
  }),
  /** the improve cycle and a task's self-repair; the caps keep an unattended rewrite loop cheap */
  improve: z.strictObject({
    /** rewrite attempts per improve cycle, each refused one fed back */
    attempts: z.number().int().min(1).max(5),
    /** recorded read calls replayed against a candidate */
    replays: z.number().int().min(0).max(50),
    /** automatic rewrites per tool per UTC day (a person's forge improve is not counted against it) */
    rewritesPerDay: z.number().int().min(0).max(10),
    /** times a task retries a call whose failure looks transient before it diagnoses it */
    transientRetries: z.number().int().min(0).max(3),
  }),
  /** how much of a session a task is shown; bounded so a long session cannot flood every turn */
  session: z.strictObject({
    recent: z.number().int().min(0).max(20),
    summarised: z.number().int().min(0).max(200),
    callChars: z.number().int().min(100).max(20_000),
    answerChars: z.number().int().min(100).max(20_000),
    lineChars: z.number().int().min(40).max(1_000),
  }),
  /** the improve cycle's evaluator: score weights, latency targets, the rewrite threshold (bounds: domain/quality.ts) */
  quality: qualityPolicySchema,
});
export type Policy = z.infer<typeof policySchema>;

export interface Harness {
  readonly prompts: Prompts;
  readonly policy: Policy;
}
