-- Improve cycles and evolve candidates still marked open are compared with Temporal whenever a
-- ledger is read (app/reconcile.ts), like tasks and forge runs (084_open_ledgers.sql): these keep
-- finding them a lookup of the few open rows.
create index if not exists improve_runs_open on improve_runs (updated_at) where status = 'running';
create index if not exists evolve_candidates_open on evolve_candidates (updated_at) where status in ('running', 'checked', 'verified');
