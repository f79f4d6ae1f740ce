-- Self-evolution's candidates (issue 11): one row per evolve cycle, keyed by its workflow id, with
-- every refused attempt and its reason, the accepted patch and its diff, the candidate image and the
-- replay report. Part 2 (consent, swap, probe) reads and extends the same row.
create table if not exists evolve_candidates (
  id text primary key,
  workflow_id text not null unique,
  batch_key text not null,
  failure_type text not null,
  evidence_ids bigint[] not null,
  status text not null default 'running',
  reason text,
  revision text,
  rationale text,
  patch jsonb,
  diff text,
  tree_hash text,
  image text,
  image_digest text,
  replay jsonb,
  attempts jsonb not null default '[]',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists evolve_candidates_created on evolve_candidates (created_at desc);
