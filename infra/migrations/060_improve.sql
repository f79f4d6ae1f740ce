-- The improve cycle's bookkeeping (issue 10): pins, archives, rollbacks, the regression gate's
-- report per version, and one row per improve cycle.

-- A pinned tool is never rewritten automatically (forge tools pin|unpin); an archived one keeps its
-- versions and folders but is no longer offered (status 'archived', 030_registry.sql), and says why
-- and, once one exists, which tool replaced it.
alter table tools add column if not exists pinned boolean not null default false;
alter table tools add column if not exists archived_at timestamptz;
alter table tools add column if not exists archive_reason text;
alter table tools add column if not exists replaced_by text;

-- What the regression gate found for a version the improve cycle promoted (per case: pass/fail,
-- old vs new output hash, latency), shown by forge tools history.
alter table tool_versions add column if not exists gate_report jsonb;

-- One row per improve cycle, keyed by its workflow id so a retried activity writes it once. The
-- trigger and status vocabularies are the workflow's (domain/improve.ts), checked there.
create table if not exists improve_runs (
  workflow_id text primary key,
  tool text not null,
  trigger text not null,
  status text not null default 'running',
  reason text,
  from_version int,
  to_version int,
  report jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- "at most 3 rewrites per tool per day" counts a tool's rows of one day
create index if not exists improve_runs_tool_created on improve_runs (tool, created_at);
