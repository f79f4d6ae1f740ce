-- Rows still marked open (a task running, a forge running or waiting for budget approval) are
-- compared with Temporal whenever a ledger is read (app/reconcile.ts): these keep finding them a
-- lookup of the few open rows, however long the ledgers grow.
create index if not exists tasks_open on tasks (updated_at) where status = 'running';
create index if not exists forge_runs_open on forge_runs (updated_at) where status in ('running', 'awaiting-budget-approval');
