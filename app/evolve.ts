import type { ForgeConfig } from '../domain/config.ts';
import type { DeployOutcome, DeployProgress } from '../domain/deploy.ts';
import { ForgeError } from '../domain/errors.ts';
import type { CurateInput, CurateOutcome, FailureEvidence } from '../domain/evidence.ts';
import type { EvolveOutcome, EvolveProgress } from '../domain/evolve.ts';
import { OUTSIDE_END_STATUSES } from '../domain/outside-end.ts';
import { workerDeployments } from '../infra/worker-deployment.ts';
import { controlDeploymentName } from '../services/config.ts';
import { type RollbackRow, rollbackRows, type VersionRow, versionRow, versionRows } from '../services/evolution/deploy.ts';
import { findRevision, type Revision, revisions } from '../services/evolution/history.ts';
import { createEvidenceStore } from '../services/runs/evidence.ts';
import { type CandidateRow, createEvolveRuns } from '../services/runs/evolve-runs.ts';
import { consentUpdate, deployProgressQuery, evolveProgressQuery } from '../workflows/definitions.ts';
import { type Session, withSession } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle } from './cycles.ts';
import { withDb } from './db.ts';
import { type CycleEnd, followCycle, settled } from './follow.ts';
import { reconcileQuietly } from './reconcile.ts';

export type { CandidateRow };

const isOutsideEnd = (status: string) => (OUTSIDE_END_STATUSES as readonly string[]).includes(status);

export class CandidateNotFoundError extends ForgeError {
  constructor(id: string) {
    super(`no evolve candidate ${id}`, 'CANDIDATE_NOT_FOUND', 'list them with: forge evolve ls', { id });
  }
}

/**
 * Self-evolution's candidates, newest first: verified, refused (with why) or in flight; a cycle
 * ended from outside (terminated, …) is first recorded as such. Works while frozen.
 */
export async function listCandidates(cfg: ForgeConfig, limit = 50): Promise<CandidateRow[]> {
  await withSession(cfg, (session) => reconcileQuietly(session));
  return withDb(cfg, (sql) => createEvolveRuns(sql).listCandidates(limit));
}

/** A verified evolve candidate waits for a person's consent until it has one (decideCandidate's rule). */
export const awaitsConsent = (c: CandidateRow) => c.status === 'verified' && !c.consent;

/**
 * The candidates waiting for a person's consent (forge approvals lists them beside the approvals,
 * read after pendingApprovalList, which compared every ledger, this one included, with Temporal).
 */
export async function pendingConsents(cfg: ForgeConfig): Promise<CandidateRow[]> {
  return (await withDb(cfg, (sql) => createEvolveRuns(sql).listCandidates(50))).filter(awaitsConsent);
}

/** The candidate's row, its cycle compared with Temporal first (ended from outside: recorded). */
async function candidateRow(session: Session, id: string): Promise<CandidateRow> {
  const read = () => withDb(session.cfg, (sql) => createEvolveRuns(sql).showCandidate(id));
  const row = await read();
  if (!row) throw new CandidateNotFoundError(id);
  const ended = await reconcileQuietly(session, { workflowIds: [row.workflow_id] });
  return ended.length ? ((await read()) ?? row) : row;
}

/** One candidate whole: the diff, the evidence, every attempt's refusal, the image and the replay table. */
export async function showCandidate(cfg: ForgeConfig, id: string): Promise<CandidateRow & { evidence: FailureEvidence[] }> {
  const row = await withSession(cfg, (session) => candidateRow(session, id));
  return withDb(cfg, async (sql) => {
    // Evidence rows are kept; a missing one leaves the candidate showable.
    const evidence = await createEvidenceStore({ sql })
      .loadEvidence(row.evidence_ids.map(Number))
      .catch(() => []);
    return { ...row, evidence };
  });
}

export interface ConsentInput {
  id: string;
  approve: boolean;
  by: string;
  note?: string;
  /** the digest the person read in forge evolve show; unset: the ledger's (the workflow checks it either way) */
  digest?: string;
}

/**
 * A person's consent to a verified candidate: sent as the `consent` update to its evolve workflow,
 * whose validator refuses another candidate's id or another image's digest (a stale consent never
 * enters its history). Resolves once the workflow took it.
 */
export async function decideCandidate(
  session: Session,
  input: ConsentInput,
): Promise<{ candidateId: string; approve: boolean; workflowId: string }> {
  // A cycle ended from outside is refused here, with how it ended, not by the closed workflow's bare error.
  const row = await candidateRow(session, input.id);
  if (row.status !== 'verified' || row.consent)
    throw new ForgeError(
      `candidate ${input.id} is ${row.status}${row.consent ? `, decided by ${String(row.consent.by ?? 'someone')}` : ''}${isOutsideEnd(row.status) ? ` (${row.reason})` : ''}: only a verified candidate waiting for consent can be approved or rejected`,
      'CANDIDATE_NOT_AWAITING_CONSENT',
      'forge evolve ls shows which candidates wait (status verified)',
      { id: input.id, status: row.status },
    );
  const imageDigest = input.digest ?? row.image_digest ?? '';
  const client = await session.temporal();
  try {
    await client.workflow.getHandle(row.workflow_id).executeUpdate(consentUpdate, {
      args: [{ candidateId: row.id, imageDigest, approve: input.approve, by: input.by, ...(input.note ? { note: input.note } : {}) }],
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new ForgeError(
      `the evolve cycle ${row.workflow_id} refused the consent: ${cause?.message ?? (err as Error).message}`,
      'CONSENT_REFUSED',
      `read the candidate again (forge evolve show ${row.id}) and send the digest it prints`,
      { id: row.id },
    );
  }
  return { candidateId: row.id, approve: input.approve, workflowId: row.workflow_id };
}

export class RevisionNotFoundError extends ForgeError {
  constructor(ref: string) {
    super(
      `no promoted harness revision ${ref}`,
      'REVISION_NOT_FOUND',
      'forge evolve history lists them: pass a commit (or a prefix of one) or a build id from there',
      { ref },
    );
  }
}

/** A rollback to the revision that already serves: refused before a deploy cycle starts (it would only refuse it). */
export class RevisionAlreadyCurrentError extends ForgeError {
  constructor(ref: string, revision: Revision, buildId: string) {
    super(
      `${revision.sha.slice(0, 12)} "${revision.subject}" (${buildId}) is already the current harness: nothing to roll back`,
      'REVISION_ALREADY_CURRENT',
      'forge evolve history lists the revisions: name an earlier one to go back to it',
      { ref, revision: revision.sha, buildId },
    );
  }
}

/** The harness history (git under FORGE_HOME), newest first, with each revision's version and its state. */
export async function harnessHistory(
  cfg: ForgeConfig,
): Promise<{ revisions: (Revision & { version: VersionRow | null })[]; rollbacks: RollbackRow[] }> {
  const revs = await revisions(cfg.home);
  return withDb(cfg, async (sql) => ({
    revisions: await Promise.all(revs.map(async (r) => ({ ...r, version: r.buildId ? await versionRow(sql, r.buildId) : null }))),
    rollbacks: await rollbackRows(sql),
  }));
}

/**
 * `forge evolve rollback <revision>`: back to an earlier revision of the harness through the same
 * swap and probe as a promotion (a deploy cycle), its image rebuilt only if it was removed.
 */
export async function rollbackHarness(
  session: Session,
  ref: string,
  by: string,
): Promise<StartedCycle & { buildId: string; revision: string }> {
  const rev = await findRevision(session.cfg.home, ref);
  if (!rev?.buildId) throw new RevisionNotFoundError(ref);
  const version = await withDb(session.cfg, (sql) => versionRow(sql, rev.buildId!));
  if (!version) throw new RevisionNotFoundError(ref);
  const client = await session.temporal();
  const { current } = await workerDeployments(client.workflowService, session.cfg.TEMPORAL_NAMESPACE).describe(
    controlDeploymentName(session.cfg),
  );
  if (current === version.build_id) throw new RevisionAlreadyCurrentError(ref, rev, version.build_id);
  const started = await startCycle(
    session,
    'deploy',
    [
      {
        kind: 'rollback',
        ref: rev.sha,
        image: version.image,
        imageDigest: version.image_digest,
        treeHash: version.tree_hash,
        sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE,
        by,
        record: `Asked for by ${by}: back to ${rev.sha.slice(0, 12)} "${rev.subject}"`,
      },
    ],
    { qualifier: 'rollback' },
  );
  return { ...started, buildId: version.build_id, revision: rev.sha };
}

/** Which control worker version serves now, and what each known version is (forge doctor, forge evolve history). */
export async function deploymentStatus(
  session: Session,
): Promise<{ deployment: string; current: string | null; ramping: string | null; versions: VersionRow[] }> {
  const client = await session.temporal();
  const deployment = controlDeploymentName(session.cfg);
  const state = await workerDeployments(client.workflowService, session.cfg.TEMPORAL_NAMESPACE).describe(deployment);
  const versions = await withDb(session.cfg, (sql) => versionRows(sql));
  return { deployment, current: state.current, ramping: state.ramping, versions };
}

/** Follows a deploy cycle (a rollback a person asked for) to its end, printing its phases. */
export async function followDeploy(
  session: Session,
  started: StartedCycle,
  onProgress?: (progress: DeployProgress) => void,
): Promise<CycleEnd<DeployOutcome>> {
  const handle = await cycleHandle(session, 'deploy', started);
  return followCycle<DeployOutcome, DeployProgress>(handle, deployProgressQuery, { onProgress });
}

/** Follows an evolve cycle (after a consent: the deploy runs as its child) to its end. */
export async function followEvolve(
  session: Session,
  workflowId: string,
  onProgress?: (progress: EvolveProgress) => void,
): Promise<CycleEnd<EvolveOutcome>> {
  const client = await session.temporal();
  return followCycle<EvolveOutcome, EvolveProgress>(client.workflow.getHandle(workflowId), evolveProgressQuery, { onProgress });
}

/**
 * One curation run now (what the nightly schedule starts), with what its evolve cycles wait for
 * consent and probe: forge demo evolve shortens the probe window to seconds, and names the evidence
 * it created (`evidenceIds`) so a person's own rows stay for the nightly run. Follows it to its end.
 */
export async function curateNow(
  session: Session,
  evolve: CurateInput['evolve'],
  evidenceIds?: number[],
): Promise<{ started: StartedCycle; end: CycleEnd<CurateOutcome> }> {
  const input: CurateInput = { sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE, evolve, ...(evidenceIds ? { evidenceIds } : {}) };
  const started = await startCycle(session, 'curate', [input], { qualifier: 'now' });
  const handle = await cycleHandle(session, 'curate', started);
  return { started, end: await settled(handle.result()) };
}

/** A deploy cycle's state machine as it stands (phases, probes), or undefined when it cannot be asked. */
export async function deployProgress(session: Session, workflowId: string): Promise<DeployProgress | undefined> {
  const client = await session.temporal();
  return client.workflow
    .getHandle(workflowId)
    .query(deployProgressQuery)
    .catch(() => undefined);
}

/** An evolve cycle's state machine as it stands, or undefined while no worker answers. */
export async function evolveProgress(session: Session, workflowId: string): Promise<EvolveProgress | undefined> {
  const client = await session.temporal();
  return client.workflow
    .getHandle(workflowId)
    .query(evolveProgressQuery)
    .catch(() => undefined);
}
