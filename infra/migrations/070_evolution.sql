-- Self-evolution, part 1 (issue 11): failure evidence, captured as it happens (a failed or stopped
-- task, an escalated call, an approval a person rejected, a tool forged twice, explicit feedback)
-- and curated nightly into batches for the evolve cycle. The vocabularies (source, failure type,
-- the expectation kinds in `expectations`) are domain/evidence.ts's, checked there.
create table if not exists failure_evidence (
  id bigserial primary key,
  -- what makes a retried activity (or a repeated `forge feedback`) write one row, e.g.
  -- task-…:task, task-…:approval:<approval id>, task-…:feedback:<hash of the feedback>
  idempotency_key text not null unique,
  workflow_id text not null,
  source text not null,
  failure_type text not null,
  expected text not null,
  happened text not null,
  -- machine-checkable: what a replay of the task must show (domain/evidence.ts expectationSchema)
  expectations jsonb not null,
  severity real not null check (severity >= 0 and severity <= 1),
  -- the agent's trace: turns, calls with their inputs and outputs (clipped), what it forged
  trace jsonb not null,
  -- set by curation: the batch the row went to (or, for a duplicate, the batch its original went to)
  curated_at timestamptz,
  batch_key text,
  -- a duplicate (same task, failure type and expectations) of the row that was batched instead
  duplicate_of bigint references failure_evidence(id),
  created_at timestamptz not null default now()
);
-- curation reads the uncurated rows of a window; forge failures ls reads newest first
create index if not exists failure_evidence_uncurated on failure_evidence (created_at) where curated_at is null;
create index if not exists failure_evidence_created on failure_evidence (created_at);
create index if not exists failure_evidence_workflow on failure_evidence (workflow_id);
create index if not exists failure_evidence_batch on failure_evidence (batch_key) where batch_key is not null;
