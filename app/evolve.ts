import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError } from '../domain/errors.ts';
import type { FailureEvidence } from '../domain/evidence.ts';
import { createEvidenceStore } from '../services/runs/evidence.ts';
import { type CandidateRow, createEvolveRuns } from '../services/runs/evolve-runs.ts';
import { withDb } from './db.ts';

export type { CandidateRow };

export class CandidateNotFoundError extends ForgeError {
  constructor(id: string) {
    super(`no evolve candidate ${id}`, 'CANDIDATE_NOT_FOUND', 'list them with: forge evolve ls', { id });
  }
}

/** Self-evolution's candidates, newest first: verified, refused (with why) or in flight. Works while frozen. */
export function listCandidates(cfg: ForgeConfig, limit = 50): Promise<CandidateRow[]> {
  return withDb(cfg, (sql) => createEvolveRuns(sql).listCandidates(limit));
}

/** One candidate whole: the diff, the evidence, every attempt's refusal, the image and the replay table. */
export async function showCandidate(cfg: ForgeConfig, id: string): Promise<CandidateRow & { evidence: FailureEvidence[] }> {
  return withDb(cfg, async (sql) => {
    const row = await createEvolveRuns(sql).showCandidate(id);
    if (!row) throw new CandidateNotFoundError(id);
    // Evidence rows are kept; a missing one leaves the candidate showable.
    const evidence = await createEvidenceStore({ sql })
      .loadEvidence(row.evidence_ids.map(Number))
      .catch(() => []);
    return { ...row, evidence };
  });
}
