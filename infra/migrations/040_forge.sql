-- One row per forge cycle (workflow): its outcome, and the daily budget's ledger.
create table if not exists forge_runs (
  workflow_id text primary key,
  need text not null,
  name text,
  status text not null,
  version int,
  reason text,
  attempts jsonb not null default '[]',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists forge_runs_created on forge_runs(created_at);

-- Approvals a person must give: writes, destructive calls by probationary tools, forging past budget.
create table if not exists approvals (
  id text primary key,
  workflow_id text not null,
  kind text not null,
  tool text,
  summary text not null,
  request jsonb,
  status text not null default 'pending',
  decided_by text,
  decided_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists approvals_status on approvals(status);
