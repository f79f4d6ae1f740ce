-- Core: tasks run by the task workflow and the steps they record.
create extension if not exists pg_trgm;

create table if not exists tasks (
  workflow_id text primary key,
  task text not null,
  status text not null default 'running',
  plan jsonb,
  result jsonb,
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- One row per side-effecting step; the idempotency key (workflow id + step) makes retries and
-- replays after a worker crash write nothing twice.
create table if not exists task_steps (
  idempotency_key text primary key,
  workflow_id text not null references tasks(workflow_id),
  step text not null,
  output jsonb,
  created_at timestamptz not null default now()
);
create index if not exists task_steps_workflow on task_steps(workflow_id);

-- The kill switch survives restarts because it lives here.
create table if not exists system_state (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now()
);
