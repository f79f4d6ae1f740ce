-- Sessions: a conversation of tasks (forge run … --session <id>). A task started in a session sees
-- the earlier ones; the session is created by its first task and lists its tasks in order.
create table if not exists sessions (
  id text primary key,
  -- the first task's words, clipped: what `forge sessions ls` shows
  title text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists sessions_updated on sessions(updated_at);

-- A task belongs to at most one session, at one place in it: the workflow id is the key, so a
-- retried join (a worker killed mid-activity) finds its place instead of taking a second one.
create table if not exists session_tasks (
  workflow_id text primary key references tasks(workflow_id),
  session_id text not null references sessions(id),
  position int not null,
  created_at timestamptz not null default now(),
  unique (session_id, position)
);
