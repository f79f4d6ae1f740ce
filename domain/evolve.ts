/**
 * Self-evolution's shapes: a batch of failure evidence handed to the evolve cycle, and what the
 * cycle makes of it. Pure: the curator, the evolve workflow and the CLI share them.
 */
import { z } from 'zod';
import { probeOverridesSchema } from './deploy.ts';
import { diffLines, splitLines } from './diff.ts';
import { curatedFailureTypeSchema } from './evidence.ts';
import { applyUnifiedDiff, PatchApplyError } from './patch-apply.ts';

export const evolveRequestSchema = z.object({
  /** the curation run and the batch within it, e.g. curate-2026-11-30:routing */
  batchKey: z.string().min(1).max(200),
  failureType: curatedFailureTypeSchema,
  evidenceIds: z.array(z.number().int().positive()).min(1).max(50),
  sandboxQueue: z.string().min(1),
  maxAttempts: z.number().int().min(1).max(3).default(3),
  /** how long a verified candidate waits for consent; unset: the deploy policy's (FORGE_CONSENT_TIMEOUT_S, 24 h) */
  consentTimeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 24 * 3600)
    .optional(),
  /** a shorter probe window for this cycle's deploy (forge demo evolve) */
  probe: probeOverridesSchema.optional(),
});
export type EvolveRequest = z.input<typeof evolveRequestSchema>;

/**
 * checked: the patch passed every check and waits for its build and replay; verified: it passed its
 * replay and waits for a person's consent (part 2); then expired (no answer in time), rejected,
 * promoted (swapped in and healthy) or rolled-back (swapped in, a probe failed, the old version serves again)
 */
export const evolveStatusSchema = z.enum(['checked', 'verified', 'refused', 'failed', 'expired', 'rejected', 'promoted', 'rolled-back']);
export type EvolveStatus = z.infer<typeof evolveStatusSchema>;

export interface EvolveOutcome {
  status: EvolveStatus;
  /** the candidate's id (`forge evolve show <id>`) */
  candidateId?: string;
  reason: string;
}

// ---- the coding agent's patch ----

/** An edit of one harness file: its whole new content, or a unified diff against the current content. */
export const harnessEditSchema = z
  .strictObject({
    /** relative to the repository root, e.g. harness/policy/ranking.ts */
    path: z.string().min(1).max(300),
    /** the complete new content of the file */
    content: z.string().max(200_000).optional(),
    /** or a unified diff (@@ hunks) against the file as it is now */
    diff: z.string().max(200_000).optional(),
  })
  .refine(
    (e) => (e.content === undefined) !== (e.diff === undefined),
    'give exactly one of content (the whole file) or diff (a unified diff)',
  );
export type HarnessEdit = z.infer<typeof harnessEditSchema>;

/** The files a patch leaves, or why it does not apply to the files as they are. */
export function resolveEdits(
  edits: readonly HarnessEdit[],
  current: Readonly<Record<string, string>>,
): { ok: true; files: { path: string; content: string }[] } | { ok: false; reason: string } {
  const files: { path: string; content: string }[] = [];
  for (const e of edits) {
    if (e.content !== undefined) {
      files.push({ path: e.path, content: e.content });
      continue;
    }
    try {
      files.push({ path: e.path, content: applyUnifiedDiff(current[e.path] ?? '', e.diff ?? '') });
    } catch (err) {
      if (!(err instanceof PatchApplyError)) throw err;
      return { ok: false, reason: `${e.path}: ${err.message}` };
    }
  }
  return { ok: true, files };
}

export const harnessPatchSchema = z.strictObject({
  rationale: z.string().min(1).max(4000).describe('What the evidence shows, the root cause, and why this change fixes it'),
  edits: z.array(harnessEditSchema).min(1).max(10).describe('Edits of evolvable harness files: whole content or a unified diff each'),
});
export type HarnessPatch = z.infer<typeof harnessPatchSchema>;

/** Where a patch's regression tests live: new files only, run with the harness's unit tests and, once promoted, by npm test. */
export const HARNESS_TESTS_DIR = 'test/evolved/';

/** A path as the scope check reads it: relative, no `.`/`..` segments, no backslashes. */
export function normalisePatchPath(p: string): string | null {
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0')) return null;
  const parts = p.split('/');
  if (parts.some((s) => s === '' || s === '.' || s === '..')) return null;
  return parts.join('/');
}

/**
 * Scope: a patch may replace only the files the harness manifest lists as evolvable, or add a new
 * test under test/evolved/. Everything else — the sandbox, verification, trust, approvals, the
 * kill switch, deployment, this cycle, its judges, the manifest and the contract — is refused.
 */
export function scopeProblems(edits: readonly HarnessEdit[], evolvable: readonly string[], existing: ReadonlySet<string>): string[] {
  const allowed = new Set(evolvable.map((p) => `harness/${p}`));
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const e of edits) {
    const p = normalisePatchPath(e.path);
    if (!p) {
      problems.push(`${JSON.stringify(e.path)} is not a plain relative path`);
      continue;
    }
    if (seen.has(p)) problems.push(`${p} is edited twice`);
    seen.add(p);
    const isNewTest =
      p.startsWith(HARNESS_TESTS_DIR) && /^[a-z0-9-]+\.test\.ts$/.test(p.slice(HARNESS_TESTS_DIR.length)) && !existing.has(p);
    if (!allowed.has(p) && !isNewTest)
      problems.push(
        `${p} is outside the evolvable harness (harness/manifest.json): a patch may change only the evolvable files and add tests under ${HARNESS_TESTS_DIR}`,
      );
  }
  return problems;
}

/**
 * Anti-overfitting review: a patch must generalise, so what it adds may not quote the evidence —
 * task ids, workflow ids, task texts, expectations or transcript phrases (a run of 6+ words, or
 * any quoted string of 12+ characters, copied from the evidence).
 */
export function overfittingProblems(
  addedLines: readonly string[],
  evidence: readonly { workflowId: string; texts: readonly string[] }[],
): string[] {
  const added = addedLines.join('\n');
  const lower = added.toLowerCase();
  const problems = new Set<string>();
  for (const e of evidence) {
    if (e.workflowId && added.includes(e.workflowId)) problems.add(`it hard-codes the workflow id ${e.workflowId}`);
    for (const text of e.texts) {
      const words = text.toLowerCase().split(/\s+/).filter(Boolean);
      for (let i = 0; i + 6 <= words.length; i++) {
        const phrase = words.slice(i, i + 6).join(' ');
        if (lower.includes(phrase)) {
          problems.add(`it copies the evidence's words "${phrase}"`);
          break;
        }
      }
      for (const q of text.match(/"[^"]{12,}"/g) ?? [])
        if (added.includes(q.slice(1, -1))) problems.add(`it hard-codes the quoted string ${q}`);
    }
  }
  return [...problems];
}

// ---- verification ----

export interface ReplayCaseResult {
  /** evidence id, or the held-out task's workflow id */
  case: string;
  kind: 'batch' | 'held-out';
  task: string;
  run: number;
  pass: boolean;
  reasons: string[];
  status: string;
  durationMs: number;
  workflowId?: string;
}

export interface ReplayReport {
  stage: 'sample' | 'full';
  batchPassRate: number;
  heldOutPassRate: number;
  /** held-out tasks passed in production; any failure now is a regression */
  heldOutRegressions: number;
  cases: ReplayCaseResult[];
  durationMs: number;
  tokens: { input: number; output: number };
  /** what the replay's model calls cost (the scratch catalog's llm_calls), in USD */
  costUsd: number;
}

/** The evolve cycle's acceptance rule, computed here from the replay results (the candidate never sees it). */
export function acceptReplay(r: ReplayReport, threshold: number): { accepted: boolean; reason: string } {
  if (r.heldOutRegressions > 0)
    return { accepted: false, reason: `${r.heldOutRegressions} held-out task(s) that passed in production failed with the candidate` };
  if (r.batchPassRate < threshold)
    return {
      accepted: false,
      reason: `the batch passed ${(r.batchPassRate * 100).toFixed(0)} % of its replays, under the ${(threshold * 100).toFixed(0)} % threshold`,
    };
  return {
    accepted: true,
    reason: `the batch passed ${(r.batchPassRate * 100).toFixed(0)} % of its replays and no held-out task regressed`,
  };
}

/** Replay thresholds: the judge's, so not in the evolvable harness. */
export const REPLAY_POLICY = { passThreshold: 0.8, runsPerCase: 2, heldOut: 3, sample: 2 } as const;

/** The lines a patch adds, for the overfitting review (what it keeps of the old file is not its doing). */
export function addedLines(edits: readonly { path: string; content: string }[], before: Readonly<Record<string, string>>): string[] {
  return edits.flatMap((e) =>
    diffLines(splitLines(before[e.path] ?? ''), splitLines(e.content))
      .filter((op) => op.kind === '+')
      .map((op) => op.line),
  );
}

// ---- the cycle's visible state ----

export interface EvolveAttemptRecord {
  attempt: number;
  /** where it stopped: scope, overfitting, apply, typecheck, lint, unit-tests; or checks when it passed */
  stage: string;
  passed: boolean;
  reason: string;
}

export type EvolvePhase =
  | 'gathering'
  | 'patching'
  | 'checking'
  | 'building'
  | 'replaying'
  | 'verified'
  | 'awaiting-consent'
  | 'deploying'
  | 'refused'
  | 'failed'
  | EvolveStatus;

export interface EvolveProgress {
  phase: EvolvePhase;
  /** while it waits for consent: what a person must send (forge evolve approve <id> does it) */
  awaitingConsent?: { candidateId: string; imageDigest: string; expiresAt: string };
  history: { phase: EvolvePhase; at: string; note?: string }[];
  attempts: EvolveAttemptRecord[];
  frozen?: boolean;
}

/** A candidate's worker image, keyed by the tree hash: building the same tree again is a no-op. */
export interface CandidateImage {
  image: string;
  digest: string;
  reused: boolean;
}

export const replayRequestSchema = z.object({
  candidateId: z.string().regex(/^[A-Za-z0-9._:-]+$/),
  image: z.string().min(1),
  evidenceIds: z.array(z.number().int().positive()).min(1),
  runsPerCase: z.number().int().min(1).max(5),
  heldOut: z.number().int().min(0).max(20),
  sample: z.number().int().min(1).max(20),
});
export type CandidateReplayRequest = z.input<typeof replayRequestSchema>;
