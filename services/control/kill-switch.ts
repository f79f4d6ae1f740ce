import type Docker from 'dockerode';
import { FrozenRefusal } from '../../domain/errors.ts';
import type { Sql } from '../db.ts';
import { reapOrphans } from '../sandbox/docker.ts';

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
    freeze: (by: string, reason?: string) => set({ frozen: true, by, reason, since: new Date().toISOString() }),
    thaw: (by: string) => set({ frozen: false, by, since: new Date().toISOString() }),
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
}): Promise<{ killedSandboxes: number }> {
  await createKillSwitch(deps.sql).freeze(deps.by, deps.reason);
  // With no Docker engine answering, no sandbox runs: the freeze itself still holds.
  return { killedSandboxes: await reapOrphans(deps.docker, { all: true, deployment: deps.deployment }).catch(() => 0) };
}
