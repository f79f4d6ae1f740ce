-- The tool registry's index. The files under <FORGE_HOME>/tools are what a person reads and edits;
-- these rows index and meter them. A version exists once its row is committed: files on disk
-- without a row are debris of an interrupted registration and are swept (activities/registry.ts).
-- Every table that a retried activity writes to has a unique idempotency key.
create extension if not exists pg_trgm;

create table if not exists tools (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{1,62}$'),
  -- null until a version is usable (e.g. the first version is still experimental)
  current_version int check (current_version >= 1),
  status text not null default 'active' check (status in ('active', 'quarantined', 'archived')),
  description text not null,
  side_effect text not null check (side_effect in ('read', 'write')),
  destructive boolean not null default false,
  -- parameter names and descriptions of the current input schema: requests often name them
  search_params text not null default '',
  -- name words weigh most, then the description, then the parameters
  search tsvector generated always as (
    setweight(to_tsvector('english'::regconfig, replace(name, '_', ' ')), 'A') ||
    -- '/' split first: the parser would read "SSL/TLS" as one file path, not two words
    setweight(to_tsvector('english'::regconfig, translate(description, '/', ' ')), 'B') ||
    setweight(to_tsvector('english'::regconfig, search_params), 'C')
  ) stored,
  trgm_text text generated always as (replace(name, '_', ' ') || ' ' || translate(description, '/', ' ')) stored,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists tools_search_gin on tools using gin (search);
create index if not exists tools_trgm_gin on tools using gin (trgm_text gin_trgm_ops);
create index if not exists tools_status on tools (status);

create table if not exists tool_versions (
  name text not null references tools (name) on delete cascade,
  version int not null check (version >= 1),
  manifest jsonb not null,
  -- copies of the files as registered: they let the registry restore a folder a person broke,
  -- and diff history even when a folder was edited by hand
  source text not null,
  tests text not null,
  api_spec jsonb,
  source_sha256 text not null check (source_sha256 ~ '^[a-f0-9]{64}$'),
  -- hash over every file of the version folder, to tell a person's edit from our own writes
  files_sha256 text not null check (files_sha256 ~ '^[a-f0-9]{64}$'),
  dir text not null,
  status text not null default 'verified' check (status in ('verified', 'experimental', 'failed')),
  created_by text not null check (created_by in ('forge', 'rewrite', 'human')),
  idempotency_key text not null unique,
  created_at timestamptz not null default now(),
  primary key (name, version)
);

create table if not exists tool_test_cases (
  name text not null,
  version int not null,
  test_name text not null,
  input jsonb not null,
  expected jsonb,
  primary key (name, version, test_name),
  foreign key (name, version) references tool_versions (name, version) on delete cascade
);

create table if not exists invocations (
  id bigserial primary key,
  idempotency_key text not null unique,
  tool text not null references tools (name),
  version int not null,
  -- what the call did, for "completed this operation 50+ times" (seed 000); 'run' for one-operation tools
  operation text not null default 'run',
  input_hash text not null,
  output_hash text,
  latency_ms int not null check (latency_ms >= 0),
  success boolean not null,
  error text,
  workflow_id text,
  created_at timestamptz not null default now()
);
create index if not exists invocations_tool_time on invocations (tool, created_at desc);
create index if not exists invocations_workflow on invocations (workflow_id);

create table if not exists audit_log (
  id bigserial primary key,
  idempotency_key text not null unique,
  kind text not null,
  tool text,
  version int,
  input jsonb,
  output jsonb,
  latency_ms int check (latency_ms >= 0),
  reasoning text,
  task_context jsonb,
  workflow_id text,
  created_at timestamptz not null default now()
);
create index if not exists audit_log_tool_time on audit_log (tool, created_at desc);
create index if not exists audit_log_workflow on audit_log (workflow_id);

-- Dense embeddings, only when an embedding provider is configured. pgvector is not assumed:
-- vectors are float8[] and cosine is computed in the application (catalogs are small).
create table if not exists tool_embeddings (
  name text not null references tools (name) on delete cascade,
  version int not null,
  model text not null,
  embedding float8[] not null,
  created_at timestamptz not null default now(),
  primary key (name, model)
);
