import type { EvolveAttemptRecord, HarnessPatch, ReplayReport } from '../../domain/evolve.ts';
import type { Sql } from '../db.ts';

/**
 * The evolve cycle's ledger: one row per cycle (evolve_candidates), every refused attempt with its
 * reason, the accepted patch and its diff, the image and the replay report. Each write is keyed by
 * the workflow id, so a retried activity writes once.
 */
export interface CandidateRow {
  id: string;
  workflow_id: string;
  batch_key: string;
  failure_type: string;
  evidence_ids: string[];
  status: string;
  reason: string | null;
  revision: string | null;
  rationale: string | null;
  patch: HarnessPatch | null;
  diff: string | null;
  tree_hash: string | null;
  image: string | null;
  image_digest: string | null;
  replay: ReplayReport | null;
  attempts: EvolveAttemptRecord[];
  consent: Record<string, unknown> | null;
  deploy: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
}

export function createEvolveRuns(sql: Sql) {
  return {
    async beginEvolve(input: {
      id: string;
      workflowId: string;
      batchKey: string;
      failureType: string;
      evidenceIds: number[];
      revision: string;
    }) {
      await sql`insert into evolve_candidates (id, workflow_id, batch_key, failure_type, evidence_ids, revision)
                values (${input.id}, ${input.workflowId}, ${input.batchKey}, ${input.failureType}, ${input.evidenceIds}, ${input.revision})
                on conflict (workflow_id) do nothing`;
    },

    /** Replaces the attempts list (the workflow holds it): a retried write is the same write. */
    async recordEvolveAttempts(input: { workflowId: string; attempts: EvolveAttemptRecord[] }) {
      await sql`update evolve_candidates set attempts = ${sql.json(input.attempts as never)}, updated_at = now()
                where workflow_id = ${input.workflowId}`;
    },

    async recordCandidate(input: {
      workflowId: string;
      status: string;
      reason: string;
      rationale?: string;
      patch?: HarnessPatch;
      diff?: string;
      treeHash?: string;
      image?: string;
      imageDigest?: string;
      replay?: ReplayReport;
      consent?: Record<string, unknown>;
      deploy?: Record<string, unknown>;
    }) {
      await sql`update evolve_candidates set status = ${input.status}, reason = ${input.reason},
                  rationale = coalesce(${input.rationale ?? null}, rationale),
                  patch = coalesce(${input.patch ? sql.json(input.patch as never) : null}, patch),
                  diff = coalesce(${input.diff ?? null}, diff), tree_hash = coalesce(${input.treeHash ?? null}, tree_hash),
                  image = coalesce(${input.image ?? null}, image), image_digest = coalesce(${input.imageDigest ?? null}, image_digest),
                  replay = coalesce(${input.replay ? sql.json(input.replay as never) : null}, replay),
                  consent = coalesce(${input.consent ? sql.json(input.consent as never) : null}, consent),
                  deploy = coalesce(${input.deploy ? sql.json(input.deploy as never) : null}, deploy), updated_at = now()
                where workflow_id = ${input.workflowId}`;
    },

    async listCandidates(limit = 50): Promise<CandidateRow[]> {
      return [...(await sql<CandidateRow[]>`select * from evolve_candidates order by created_at desc limit ${limit}`)];
    },

    async showCandidate(id: string): Promise<CandidateRow | undefined> {
      const [row] = await sql<CandidateRow[]>`select * from evolve_candidates where id = ${id} or workflow_id = ${id}`;
      return row;
    },
  };
}

export type EvolveRuns = ReturnType<typeof createEvolveRuns>;
