import { createHash } from 'node:crypto';
import {
  type Curation,
  type CurationRow,
  curatedFailureTypeSchema,
  curateEvidence,
  DUPLICATE_SIMILARITY,
  deriveTaskEvidence,
  type EvidenceBatch,
  type EvidenceDraft,
  EvidenceNotFoundError,
  type FailureEvidence,
  type FeedbackRequest,
  failureEvidenceSchema,
  feedbackEvidence,
  type StoredTask,
  type TaskFacts,
  TaskNotFoundError,
  TaskStillRunningError,
  type TaskTraceSource,
} from '../../domain/evidence.ts';
import type { Registry } from '../catalog/registry.ts';
import type { Sql } from '../db.ts';

interface EvidenceRow {
  id: string;
  idempotency_key: string;
  workflow_id: string;
  source: string;
  failure_type: string;
  expected: string;
  happened: string;
  expectations: unknown;
  severity: number;
  trace: unknown;
  curated_at: Date | null;
  batch_key: string | null;
  duplicate_of: string | null;
  created_at: Date;
}

const toEvidence = (r: EvidenceRow): FailureEvidence =>
  failureEvidenceSchema.parse({
    id: Number(r.id),
    workflowId: r.workflow_id,
    source: r.source,
    failureType: r.failure_type,
    expected: r.expected,
    happened: r.happened,
    expectations: r.expectations,
    severity: Number(r.severity),
    trace: r.trace,
    createdAt: new Date(r.created_at).toISOString(),
    ...(r.curated_at ? { curatedAt: new Date(r.curated_at).toISOString() } : {}),
    ...(r.batch_key ? { batchKey: r.batch_key } : {}),
    ...(r.duplicate_of ? { duplicateOf: Number(r.duplicate_of) } : {}),
  });

/** The same feedback (words and expectations) given twice about one task is one row. */
const fingerprintOf = (input: FeedbackRequest): string =>
  createHash('sha256')
    .update(JSON.stringify([input.bad, input.expectTool ?? null, input.expectAnswer ?? null]))
    .digest('hex')
    .slice(0, 16);

/**
 * Failure evidence in Postgres (infra/migrations/070_evolution.sql). Every row is written under its
 * idempotency key with ON CONFLICT DO NOTHING, so a retried activity (or the same feedback given
 * twice) writes it once; curation marks rows under a lock, keyed by its run, so a retried curation
 * returns the batches the first attempt made.
 */
export function createEvidenceStore(deps: { sql: Sql; registry?: Registry }) {
  const { sql, registry } = deps;

  /** Writes drafts in one transaction; the ids of all of them, new or already there. */
  async function write(drafts: readonly EvidenceDraft[]): Promise<{ ids: number[]; created: number }> {
    if (!drafts.length) return { ids: [], created: 0 };
    return sql.begin(async (tx) => {
      let created = 0;
      const ids: number[] = [];
      for (const d of drafts) {
        const inserted = await tx<{ id: string }[]>`
          insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
          values (${d.idempotencyKey}, ${d.workflowId}, ${d.source}, ${d.failureType}, ${d.expected}, ${d.happened},
                  ${sql.json(d.expectations as never)}, ${d.severity}, ${sql.json(d.trace as never)})
          on conflict (idempotency_key) do nothing returning id`;
        if (inserted[0]) {
          created++;
          ids.push(Number(inserted[0].id));
        } else {
          const [row] = await tx<{ id: string }[]>`select id from failure_evidence where idempotency_key = ${d.idempotencyKey}`;
          ids.push(Number(row!.id));
        }
      }
      return { ids, created };
    });
  }

  /**
   * Forged tools the catalog already had an equivalent of: the tool itself, when the task's forge
   * ended on its name with exactly its code (the forge ledger's `unchanged`: nothing registered, the
   * agent should have called it); else another active tool their own description finds, with the
   * same outputs.
   */
  async function duplicatesOf(workflowId: string, forged: readonly string[]): Promise<NonNullable<TaskFacts['duplicates']>> {
    const found: NonNullable<TaskFacts['duplicates']> = [];
    if (!forged.length) return found;
    // The task's forges are its child workflows, `<task>.forge.<call>` (workflows/task.ts forgeFor).
    const prefix = `${workflowId}.forge.`;
    const unchanged = await sql<{ name: string; version: number }[]>`
      select name, version from forge_runs
      where left(workflow_id, ${prefix.length}) = ${prefix} and status = 'unchanged' and name is not null and version is not null
      order by created_at, workflow_id`;
    for (const r of unchanged)
      if (forged.includes(r.name) && !found.some((f) => f.forged === r.name))
        found.push({ forged: r.name, existing: r.name, similarity: 1, sameCode: { version: r.version } });
    if (!registry) return found;
    for (const name of new Set(forged)) {
      if (found.some((f) => f.forged === name)) continue;
      const current = await registry.getCurrent(name);
      if (!current) continue;
      const hits = await registry.search(current.manifest.description, { limit: 5 });
      const near = hits.filter(
        (h) => h.name !== name && !forged.includes(h.name) && h.status === 'active' && h.similarity >= DUPLICATE_SIMILARITY,
      );
      // Words alone mislead (a slug maker and a word counter both speak of "words"): a duplicate also
      // returns the same things, so its output fields must mostly be the existing tool's.
      for (const h of near) {
        const existing = await registry.getCurrent(h.name);
        if (existing && sameOutputs(current.manifest.outputSchema, existing.manifest.outputSchema)) {
          found.push({ forged: name, existing: h.name, similarity: h.similarity });
          break;
        }
      }
    }
    return found;
  }

  /** A task as the tasks table holds it, with its session; undefined when there is none by that id. */
  async function findTask(workflowId: string): Promise<StoredTask | undefined> {
    const [row] = await sql<
      {
        workflow_id: string;
        task: string;
        status: string;
        result: TaskTraceSource | null;
        error: string | null;
        session_id: string | null;
      }[]
    >`select t.workflow_id, t.task, t.status, t.result, t.error, st.session_id
      from tasks t left join session_tasks st on st.workflow_id = t.workflow_id where t.workflow_id = ${workflowId}`;
    if (!row) return undefined;
    return {
      workflowId: row.workflow_id,
      task: row.task,
      status: row.status,
      ...(row.result ? { result: row.result } : {}),
      ...(row.error ? { error: row.error } : {}),
      ...(row.session_id ? { sessionId: row.session_id } : {}),
    };
  }

  /** Rows by id, in the order asked; an id that is not there fails, naming it. */
  async function loadEvidence(ids: readonly number[]): Promise<FailureEvidence[]> {
    if (!ids.length) return [];
    const rows = await sql<EvidenceRow[]>`select * from failure_evidence where id = any(${sql.array(ids.map(Number))}::bigint[])`;
    const byId = new Map(rows.map((r) => [Number(r.id), toEvidence(r)]));
    const missing = ids.filter((id) => !byId.has(id));
    if (missing.length) throw new EvidenceNotFoundError(missing);
    return ids.map((id) => byId.get(id)!);
  }

  return {
    findTask,
    loadEvidence,

    /**
     * The evidence a finished task leaves (domain/evidence.ts deriveTaskEvidence), with what the
     * derivation needs looked up here: the write or destructive approvals a person rejected in it,
     * and whether what it forged duplicates a catalog tool.
     */
    async recordTaskEvidence(input: {
      workflowId: string;
      result: TaskTraceSource;
      sessionId?: string;
      error?: string;
    }): Promise<{ ids: number[]; created: number }> {
      const rejected = await sql<{ id: string; kind: string; tool: string | null; decided_by: string | null; summary: string }[]>`
        select id, kind, tool, decided_by, summary from approvals
        where workflow_id = ${input.workflowId} and status = 'rejected' and kind in ('write', 'destructive') order by created_at, id`;
      const facts: TaskFacts = {
        workflowId: input.workflowId,
        result: input.result,
        ...(input.sessionId ? { sessionId: input.sessionId } : {}),
        ...(input.error ? { error: input.error } : {}),
        rejected: rejected.map((r) => ({
          approvalId: r.id,
          kind: r.kind,
          ...(r.tool ? { tool: r.tool } : {}),
          ...(r.decided_by ? { by: r.decided_by } : {}),
          summary: r.summary,
        })),
        duplicates: await duplicatesOf(input.workflowId, input.result.forged),
      };
      return write(deriveTaskEvidence(facts));
    },

    /** A person's feedback on a finished task, as one row (the same feedback again returns it). */
    async recordFeedback(input: FeedbackRequest): Promise<{ evidence: FailureEvidence; created: boolean }> {
      const task = await findTask(input.workflowId);
      if (!task) throw new TaskNotFoundError(input.workflowId);
      if (!task.result && !task.error) throw new TaskStillRunningError(input.workflowId);
      const { ids, created } = await write([feedbackEvidence(input, task, fingerprintOf(input))]);
      const [evidence] = await loadEvidence(ids);
      return { evidence: evidence!, created: created === 1 };
    },

    /** Newest first, created after `since` when given; `total` counts them all. */
    async listEvidence(opts: { since?: Date; limit: number }): Promise<{ evidence: FailureEvidence[]; total: number }> {
      const since = opts.since ?? new Date(0);
      const rows = await sql<
        EvidenceRow[]
      >`select * from failure_evidence where created_at > ${since} order by id desc limit ${opts.limit}`;
      const [count] = await sql<{ n: number }[]>`select count(*)::int as n from failure_evidence where created_at > ${since}`;
      return { evidence: rows.map(toEvidence), total: count?.n ?? 0 };
    },

    /**
     * One curation run: the uncurated rows of (since, until] at or above minSeverity, de-duplicated
     * and batched (domain/evidence.ts curateEvidence), marked with their batch key, under a lock.
     * Keyed by the run: when rows already carry this run's batch keys (a retry after the first
     * attempt committed), those batches are returned and nothing is marked again.
     */
    async curate(input: {
      runKey: string;
      since: Date;
      until: Date;
      minSeverity: number;
      maxBatches: number;
      /** only these rows, when given (forge demo evolve's own evidence, not a person's) */
      evidenceIds?: readonly number[];
    }): Promise<{ batches: EvidenceBatch[]; duplicates: number; deferred: number; considered: number }> {
      const prefix = `${input.runKey}:`;
      return sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(727275)`;
        const done = await tx<{ id: string; batch_key: string; failure_type: string; duplicate_of: string | null }[]>`
          select id, batch_key, failure_type, duplicate_of from failure_evidence
          where left(batch_key, ${prefix.length}) = ${prefix} order by id`;
        if (done.length) {
          const batches = new Map<string, EvidenceBatch>();
          for (const r of done) {
            if (r.duplicate_of) continue;
            const b = batches.get(r.batch_key) ?? {
              batchKey: r.batch_key,
              failureType: r.failure_type as EvidenceBatch['failureType'],
              evidenceIds: [],
            };
            b.evidenceIds.push(Number(r.id));
            batches.set(r.batch_key, b);
          }
          const duplicates = done.filter((r) => r.duplicate_of).length;
          return { batches: [...batches.values()], duplicates, deferred: 0, considered: done.length };
        }
        const only = input.evidenceIds ? tx`and id = any(${tx.array([...input.evidenceIds])}::bigint[])` : tx``;
        // A declined write is a person's decision, not the agent's fault: never batched.
        const curatable = tx.array([...curatedFailureTypeSchema.options]);
        const rows = await tx<
          { id: string; failure_type: string; severity: number; task: string; expectations: CurationRow['expectations'] }[]
        >`
          select id, failure_type, severity, trace->>'task' as task, expectations from failure_evidence
          where curated_at is null and created_at > ${input.since} and created_at <= ${input.until} and severity >= ${input.minSeverity}
            and failure_type = any(${curatable}::text[]) ${only}
          order by id`;
        const curation: Curation = curateEvidence(
          rows.map((r) => ({
            id: Number(r.id),
            failureType: r.failure_type as CurationRow['failureType'],
            severity: Number(r.severity),
            task: r.task ?? '',
            expectations: r.expectations,
          })),
          { runKey: input.runKey, maxBatches: input.maxBatches },
        );
        for (const b of curation.batches) {
          await tx`update failure_evidence set curated_at = now(), batch_key = ${b.batchKey}
                   where id = any(${tx.array(b.evidenceIds)}::bigint[])`;
        }
        for (const d of curation.duplicates) {
          await tx`update failure_evidence set curated_at = now(), batch_key = ${d.batchKey}, duplicate_of = ${d.of} where id = ${d.id}`;
        }
        return {
          batches: curation.batches,
          duplicates: curation.duplicates.length,
          deferred: curation.deferred.length,
          considered: rows.length,
        };
      });
    },
  };
}

export type EvidenceStore = ReturnType<typeof createEvidenceStore>;

/** Output field names of a JSON Schema object (none for anything else). */
function outputFields(schema: unknown): Set<string> {
  const props = (schema as { properties?: Record<string, unknown> } | null)?.properties;
  return new Set(props && typeof props === 'object' ? Object.keys(props) : []);
}

/** Two tools return the same things when most of their output fields are shared (Jaccard ≥ 0.5). */
function sameOutputs(a: unknown, b: unknown): boolean {
  const x = outputFields(a);
  const y = outputFields(b);
  if (!x.size || !y.size) return false;
  const shared = [...x].filter((f) => y.has(f)).length;
  return shared / (x.size + y.size - shared) >= 0.5;
}
