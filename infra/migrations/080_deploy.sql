-- Self-evolution, part 2 (issue 12): the control worker's versions, their heartbeats, and the
-- append-only rollback log. Temporal's worker deployment says which version is current; these rows
-- say what each version is (image, tree, harness revision) and what happened to it.
create table if not exists deploy_versions (
  build_id text primary key,
  image text not null,
  image_digest text not null,
  tree_hash text not null,
  -- the harness history's commit once promoted (forge evolve rollback <revision>)
  revision text,
  -- what put it there: install (forge up), evolve (a candidate), rollback (a person)
  kind text not null,
  ref text,
  -- starting | probing | promoted | rolled-back | retired
  status text not null,
  reason text,
  probes jsonb not null default '[]',
  created_at timestamptz not null default now(),
  promoted_at timestamptz,
  updated_at timestamptz not null default now()
);
create index if not exists deploy_versions_promoted on deploy_versions (promoted_at desc nulls last);

-- Written by each versioned control worker every few seconds; the probe reads its age.
create table if not exists worker_heartbeats (
  build_id text primary key,
  host text not null,
  beat_at timestamptz not null default now()
);

-- Every rollback, automatic or asked for: never updated, never deleted.
create table if not exists deploy_rollbacks (
  id bigserial primary key,
  deploy_id text not null unique,
  from_build text not null,
  to_build text,
  reason text not null,
  metrics jsonb not null,
  restore_ms integer,
  terminated text[] not null default '{}',
  at timestamptz not null default now()
);
create or replace function deploy_rollbacks_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'deploy_rollbacks is append-only: % refused', tg_op;
end $$;
drop trigger if exists deploy_rollbacks_append_only on deploy_rollbacks;
create trigger deploy_rollbacks_append_only before update or delete on deploy_rollbacks
  for each row execute function deploy_rollbacks_append_only();

alter table evolve_candidates add column if not exists consent jsonb;
alter table evolve_candidates add column if not exists deploy jsonb;
