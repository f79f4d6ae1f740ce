import type { ForgeConfig } from '../domain/config.ts';
import { sandboxDeploymentName } from '../services/config.ts';
import { createKillSwitch, freezeForge, type KillSwitchState } from '../services/control/kill-switch.ts';
import type { ReapCounts } from '../services/sandbox/docker.ts';
import { withDb } from './db.ts';

export type { KillSwitchState, ReapCounts };

/** The kill switch: refuse every side effect from now on, and kill the sandboxes that run. */
export async function freeze(
  cfg: ForgeConfig,
  by: string,
  reason?: string,
): Promise<{ killedSandboxes: number; sandboxes: ReapCounts; alreadyFrozen?: KillSwitchState }> {
  // dockerode is imported here, not at the top: only freezing kills containers (thaw never needs it).
  const { dockerClient } = await import('../infra/docker.ts');
  return withDb(cfg, (sql) => freezeForge({ sql, docker: dockerClient(cfg), deployment: sandboxDeploymentName(cfg), by, reason }));
}

/** Lifts the kill switch: waiting workflows resume within seconds. */
export async function thaw(cfg: ForgeConfig, by: string): Promise<void> {
  await thawForge(cfg, by);
}

/** thaw, telling whether Forge was frozen at all (when it was not, nothing is written). */
export function thawForge(cfg: ForgeConfig, by: string): Promise<{ wasFrozen: boolean; before: KillSwitchState }> {
  return withDb(cfg, async (sql) => {
    const before = await createKillSwitch(sql).thaw(by);
    return { wasFrozen: before.frozen, before };
  });
}

export function killSwitchState(cfg: ForgeConfig): Promise<KillSwitchState> {
  return withDb(cfg, (sql) => createKillSwitch(sql).state());
}

/**
 * The kill switch's state when Forge is frozen, else undefined: what a command that starts or
 * shows a cycle says beside it. A state that cannot be read says nothing (the cycle was started or
 * read all the same; forge doctor says what is down).
 */
export function frozenNow(cfg: ForgeConfig): Promise<KillSwitchState | undefined> {
  return killSwitchState(cfg).then(
    (s) => (s.frozen ? s : undefined),
    () => undefined,
  );
}
