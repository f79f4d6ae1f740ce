import type Docker from 'dockerode';
import { FrozenRefusal } from '../../domain/errors.ts';
import type { Sql } from '../db.ts';
import { type ReapCounts, reapSandboxes } from '../sandbox/docker.ts';

export interface KillSwitchState {
  frozen: boolean;
  by?: string;
  reason?: string;
  since?: string;
}

/**
 * The kill switch lives in Postgres (system_state), so it survives restarts and every worker sees
 * it. Side-effecting activities call `guard()` first; while frozen they are refused with a
 * FrozenRefusal (a non-retryable ForgeFrozen failure once it crosses the activity boundary), which workflows answer by waiting (workflows/frozen.ts).
 */
export function createKillSwitch(sql: Sql, cacheMs = 500) {
  let cached: { at: number; state: KillSwitchState } | undefined;

  async function state(): Promise<KillSwitchState> {
    if (cached && Date.now() - cached.at < cacheMs) return cached.state;
    const [row] = await sql<{ value: KillSwitchState }[]>`select value from system_state where key = 'kill_switch'`;
    const s = row?.value ?? { frozen: false };
    cached = { at: Date.now(), state: s };
    return s;
  }

  async function set(next: KillSwitchState): Promise<void> {
    await sql`insert into system_state (key, value) values ('kill_switch', ${sql.json(next as never)})
              on conflict (key) do update set value = excluded.value, updated_at = now()`;
    cached = undefined;
  }

  return {
    state,
    /**
     * Freezes, and returns the state before. Freezing a frozen Forge changes nothing: the first
     * freeze's who, when and why are what a person reads, so a second one must not overwrite them.
     */
    async freeze(by: string, reason?: string): Promise<KillSwitchState> {
      const next = { frozen: true, by, reason, since: new Date().toISOString() };
      // One statement, so two people freezing at once cannot both win.
      const [row] = await sql<{ value: KillSwitchState }[]>`
        with before as (select value from system_state where key = 'kill_switch'),
        written as (
          insert into system_state (key, value) values ('kill_switch', ${sql.json(next as never)})
          on conflict (key) do update set value = excluded.value, updated_at = now()
            where coalesce((system_state.value->>'frozen')::boolean, false) = false
          returning 1)
        select value from before`;
      cached = undefined;
      return row?.value ?? { frozen: false };
    },
    /** Thaws, and returns the state before; thawing a Forge that is not frozen writes nothing. */
    async thaw(by: string): Promise<KillSwitchState> {
      cached = undefined;
      const before = await state();
      if (before.frozen) await set({ frozen: false, by, since: new Date().toISOString() });
      return before;
    },
    async guard(what: string): Promise<void> {
      const s = await state();
      if (s.frozen) {
        throw new FrozenRefusal(
          `Forge is frozen${s.by ? ` by ${s.by}` : ''}${s.since ? ` since ${s.since}` : ''}: ${what} refused (run forge thaw to resume)`,
        );
      }
    },
  };
}
export type KillSwitch = ReturnType<typeof createKillSwitch>;

/**
 * `forge freeze`: refuse first, then kill every running sandbox — a job that starts in between is
 * refused by the guard that runs after it, so nothing slips through.
 */
export async function freezeForge(deps: {
  sql: Sql;
  docker: Docker;
  deployment: string;
  by: string;
  reason?: string;
}): Promise<{ killedSandboxes: number; sandboxes: ReapCounts; alreadyFrozen?: KillSwitchState }> {
  const before = await createKillSwitch(deps.sql).freeze(deps.by, deps.reason);
  // With no Docker engine answering, no sandbox runs: the freeze itself still holds. Reaped again
  // when already frozen: a sandbox started just before the first freeze may still be running.
  const none: ReapCounts = { total: 0, jobs: 0, warmPool: 0, stopped: 0 };
  const sandboxes = await reapSandboxes(deps.docker, { all: true, deployment: deps.deployment }).catch(() => none);
  const result = { killedSandboxes: sandboxes.total, sandboxes };
  return before.frozen ? { ...result, alreadyFrozen: before } : result;
}
