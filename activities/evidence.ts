import { z } from 'zod';
import type { TaskTraceSource } from '../domain/evidence.ts';
import type { Registry } from '../services/catalog/registry.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { createEvidenceStore } from '../services/runs/evidence.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guard } from './guard.ts';

const workflowId = z.string().min(1).max(1000);
// Built by workflow code from checked parts (the task's result); the boundary checks its shape.
const taskResult = z.custom<TaskTraceSource>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { task?: unknown }).task === 'string' &&
    Array.isArray((v as { calls?: unknown }).calls),
  'expected a task result (task, status, answer, calls, forged)',
);

const recordFailureEvidenceSchema = z.object({
  workflowId,
  result: taskResult,
  sessionId: z.string().min(1).optional(),
  /** the task workflow itself failed: its cause */
  error: z.string().optional(),
});
const loadEvidenceSchema = z.object({ ids: z.array(z.number().int().positive()).max(500) });
const curateEvidenceSchema = z.object({
  runKey: z.string().min(1).max(100),
  since: z.iso.datetime(),
  until: z.iso.datetime(),
  minSeverity: z.number().min(0).max(1),
  maxBatches: z.number().int().min(0).max(20),
  /** only these rows (forge demo evolve's own evidence) */
  evidenceIds: z.array(z.number().int().positive()).optional(),
});

/**
 * Failure evidence (issue 11) on the control queue: capture as a task finishes, the rows the evolve
 * cycle loads, and the nightly curation. Curation is refused while frozen: a frozen Forge starts no
 * self-modification, and the rows stay for a later night.
 */
export function createEvidenceActivities(deps: { sql: Sql; registry: Registry; killSwitch: KillSwitch }) {
  const store = createEvidenceStore({ sql: deps.sql, registry: deps.registry });
  return adapted({
    /** The rows a finished task leaves (domain/evidence.ts deriveTaskEvidence): one per cause, written once per key. */
    recordFailureEvidence: (input: z.input<typeof recordFailureEvidenceSchema>) =>
      store.recordTaskEvidence(parseActivityInput(recordFailureEvidenceSchema, input, 'recordFailureEvidence input')),
    /** Evidence rows by id, in the order asked; an unknown id fails non-retryably (EVIDENCE_NOT_FOUND). */
    loadEvidence: (input: z.input<typeof loadEvidenceSchema>) =>
      store.loadEvidence(parseActivityInput(loadEvidenceSchema, input, 'loadEvidence input').ids),
    curateEvidence: async (input: z.input<typeof curateEvidenceSchema>) => {
      const req = parseActivityInput(curateEvidenceSchema, input, 'curateEvidence input');
      await guard(deps.killSwitch, 'curating failure evidence');
      return store.curate({ ...req, since: new Date(req.since), until: new Date(req.until) });
    },
  });
}
