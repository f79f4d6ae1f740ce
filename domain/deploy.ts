/**
 * Self-evolution, part 2: how a harness version goes live. Pure: the consent a person gives, the
 * deployment policy, and the health judge the deploy workflow applies to what the probes measured.
 * The judge lives here (fixed code the candidate runs but cannot edit: the manifest marks domain/ as
 * fixed), and it runs on the version being replaced, never inside the candidate.
 */
import { z } from 'zod';

// ---- versions ----

/** A Temporal Worker Deployment build id from an image digest: `img-` and the digest's first 16 hex digits. */
export function buildIdOf(digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  if (!/^[a-f0-9]{16,}$/.test(hex)) throw new Error(`not an image digest: ${digest}`);
  return `img-${hex.slice(0, 16)}`;
}

/** The control worker's deployment name for a control task queue, unless FORGE_DEPLOYMENT names one. */
export function deploymentNameFor(taskQueue: string): string {
  return `forge-${taskQueue.replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

// ---- the policy (the judge's, so fixed: not in the evolvable harness) ----

export const deployPolicySchema = z.object({
  /** how long a verified candidate waits for a person before it expires and nothing changes */
  consentTimeoutSeconds: z
    .number()
    .int()
    .min(1)
    .default(24 * 3600),
  /** how long the new version is watched after the swap */
  probeWindowSeconds: z.number().int().min(1).default(600),
  /** how often it is probed */
  probeIntervalSeconds: z.number().int().min(1).default(30),
  /** consecutive healthy probes that promote it (at most as many as fit in the window) */
  passesNeeded: z.number().int().min(1).default(3),
  /** the heartbeat the new worker writes must be younger than this */
  heartbeatMaxAgeSeconds: z.number().int().min(1).default(20),
  /** tool calls started on the new version that failed, at most */
  maxErrorRate: z.number().min(0).max(1).default(0.05),
  /** tasks started on the new version that completed, at least */
  minTaskSuccess: z.number().min(0).max(1).default(0.8),
  /** rates are judged once this many calls or tasks ran on the new version */
  minSample: z.number().int().min(1).default(3),
  /** how long the new version's worker may take to start polling */
  startTimeoutSeconds: z.number().int().min(10).default(300),
});
export type DeployPolicy = z.output<typeof deployPolicySchema>;

/** One cycle's shorter probe window (a demo, an operator in a hurry); the rest of the policy stays. */
export const probeOverridesSchema = z.strictObject({
  probeWindowSeconds: z
    .number()
    .int()
    .min(1)
    .max(24 * 3600)
    .optional(),
  probeIntervalSeconds: z.number().int().min(1).max(3600).optional(),
  passesNeeded: z.number().int().min(1).max(100).optional(),
});
export type ProbeOverrides = z.output<typeof probeOverridesSchema>;

/** The policy with a cycle's overrides on top (only the fields it sets). */
export function withOverrides(policy: DeployPolicy, overrides: ProbeOverrides | undefined): DeployPolicy {
  return { ...policy, ...Object.fromEntries(Object.entries(overrides ?? {}).filter(([, v]) => v !== undefined)) };
}

// ---- consent ----

/** What a person sends to a verified candidate's evolve workflow (forge evolve approve|reject, or the Temporal UI). */
export const consentSchema = z.strictObject({
  /** the candidate's id (its evolve workflow id), so a consent meant for another candidate is refused */
  candidateId: z.string().min(1),
  /** the image digest `forge evolve show` printed: a consent for a rebuilt or other image is refused */
  imageDigest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'sha256:<64 hex digits>, as forge evolve show prints it'),
  approve: z.boolean(),
  by: z.string().min(1).max(200).default('someone'),
  note: z.string().max(2000).optional(),
});
export type Consent = z.output<typeof consentSchema>;

/** Why a consent cannot be taken (the update's validator throws it: it never enters history), or null. */
export function consentProblem(
  raw: unknown,
  waiting: { candidateId: string; imageDigest: string } | undefined,
  decided: boolean,
): string | null {
  const parsed = consentSchema.safeParse(raw);
  if (!parsed.success)
    return `a consent is {candidateId, imageDigest, approve, by}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
  if (!waiting) return 'this evolve cycle is not waiting for consent (it has no verified candidate yet, or it has ended)';
  if (decided) return 'the candidate is already decided';
  const c = parsed.data;
  if (c.candidateId !== waiting.candidateId) return `this workflow's candidate is ${waiting.candidateId}, not ${c.candidateId}`;
  if (c.imageDigest !== waiting.imageDigest)
    return `the candidate's image is ${waiting.imageDigest}, not ${c.imageDigest}: the consent is stale or meant for another image; read forge evolve show ${waiting.candidateId} again`;
  return null;
}

// ---- the health probe ----

export interface ProbeSample {
  at: string;
  containerRunning: boolean;
  /** why the container is not running, when it is not */
  containerWhy?: string;
  /** seconds since the new worker's last heartbeat; null when it never wrote one */
  heartbeatAgeSeconds: number | null;
  probeTasks: { passed: number; total: number; failures: string[] };
  /** tool calls of workflows started on the new version */
  liveCalls: { failed: number; total: number };
  /** task workflows started on the new version that have ended */
  liveTasks: { completed: number; failed: number };
}

export interface ProbeVerdict {
  healthy: boolean;
  reasons: string[];
}

/** The judge: one probe's sample against the policy. Every failing check is named. */
export function judgeProbe(s: ProbeSample, p: DeployPolicy): ProbeVerdict {
  const reasons: string[] = [];
  if (!s.containerRunning) reasons.push(`the new version's container is not running${s.containerWhy ? `: ${s.containerWhy}` : ''}`);
  if (s.heartbeatAgeSeconds === null) reasons.push("the new version's worker never wrote a heartbeat");
  else if (s.heartbeatAgeSeconds > p.heartbeatMaxAgeSeconds)
    reasons.push(`the new version's worker last beat ${Math.round(s.heartbeatAgeSeconds)} s ago (limit ${p.heartbeatMaxAgeSeconds} s)`);
  if (s.probeTasks.passed < s.probeTasks.total)
    reasons.push(
      `${s.probeTasks.total - s.probeTasks.passed} of ${s.probeTasks.total} probe task(s) failed: ${s.probeTasks.failures.join('; ')}`,
    );
  if (s.liveCalls.total >= p.minSample && s.liveCalls.failed / s.liveCalls.total > p.maxErrorRate)
    reasons.push(
      `${pct(s.liveCalls.failed / s.liveCalls.total)} of the ${s.liveCalls.total} tool calls on the new version failed (limit ${pct(p.maxErrorRate)})`,
    );
  const ended = s.liveTasks.completed + s.liveTasks.failed;
  if (ended >= p.minSample && s.liveTasks.completed / ended < p.minTaskSuccess)
    reasons.push(
      `${pct(s.liveTasks.completed / ended)} of the ${ended} tasks on the new version completed (at least ${pct(p.minTaskSuccess)})`,
    );
  return { healthy: reasons.length === 0, reasons };
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

// ---- the deploy cycle ----

export const deployRequestSchema = z.object({
  /** why: an evolve candidate's promotion, or a person's rollback to an earlier revision */
  kind: z.enum(['evolve', 'rollback']),
  /** the evolve candidate, or the revision rolled back to */
  ref: z.string().min(1),
  image: z.string().min(1),
  imageDigest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  treeHash: z.string().regex(/^[a-f0-9]{64}$/),
  sandboxQueue: z.string().min(1),
  /** who consented or asked */
  by: z.string().min(1),
  /** the commit message's body: the evidence, the replay report, the consent */
  record: z.string().max(100_000).default(''),
  probe: probeOverridesSchema.optional(),
});
export type DeployRequest = z.input<typeof deployRequestSchema>;

export type DeployPhase = 'starting' | 'swapping' | 'probing' | 'promoted' | 'rolling-back' | 'rolled-back' | 'refused' | 'failed';

export interface DeployProgress {
  phase: DeployPhase;
  buildId?: string;
  previous?: string | null;
  probes: (ProbeVerdict & { at: string; sample: ProbeSample })[];
  passesInARow: number;
  history: { phase: DeployPhase; at: string; note?: string }[];
  frozen?: boolean;
}

export interface DeployOutcome {
  status: 'promoted' | 'rolled-back' | 'refused';
  buildId: string;
  previous: string | null;
  reason: string;
  /** the harness history's commit for a promotion */
  revision?: string;
  /** from the failing probe to the old version serving again */
  restoreMs?: number;
}
