/**
 * Every activity the workers serve, composed once. Workflows import the types only
 * (workflows/activities.ts); workers/main.ts builds the implementations from services.
 */

import type { Registry } from '../services/catalog/registry.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import type { Llm } from '../services/llm/client.ts';
import type { RegisteredToolDeps } from '../services/sandbox/run-registered.ts';
import type { LiveOptions } from '../services/sandbox/stages/index.ts';
import type { SandboxBackend } from '../services/sandbox/types.ts';
import { createAuditActivities } from './audit.ts';
import { createApprovalActivities, createForgeStoreActivities, createStoreActivities, createTaskStartActivities } from './bookkeeping.ts';
import { createDeployActivities, type DeployActivityDeps } from './deploy.ts';
import { createEvidenceActivities } from './evidence.ts';
import { createEvolveActivities } from './evolve.ts';
import { createEvolveSandboxActivities, type EvolveSandboxDeps } from './evolve-sandbox.ts';
import { guarded } from './guard.ts';
import { createImproveActivities } from './improve.ts';
import { forgeLlmActivities, llmActivities } from './llm.ts';
import { createRegisteredToolActivities, createSandboxActivities, createVerifyActivities } from './sandbox.ts';
import { createTaskToolActivities } from './task-tools.ts';

export interface ControlDeps {
  sql: Sql;
  registry: Registry;
  llm: Llm;
  killSwitch: KillSwitch;
  dailyForgeBudget: number;
  /** FORGE_HOME: where the evolve cycle keeps its scratch trees */
  home: string;
}

/** The control queue: bookkeeping, the catalog and the model. */
export function createControlActivities(deps: ControlDeps) {
  const { sql, registry, llm, killSwitch } = deps;
  const { registerForgedTool, ...forgeBookkeeping } = createForgeStoreActivities({
    sql,
    registry,
    dailyBudget: deps.dailyForgeBudget,
    killSwitch,
  });
  return {
    ...createStoreActivities(sql),
    ...createTaskStartActivities({ sql, registry }),
    ...forgeBookkeeping,
    ...createApprovalActivities(sql),
    ...createTaskToolActivities({ registry }),
    ...createAuditActivities({ sql, killSwitch }),
    ...createImproveActivities({ sql, registry, llm, killSwitch }),
    ...createEvidenceActivities({ sql, registry, killSwitch }),
    ...createEvolveActivities({ sql, llm, killSwitch, home: deps.home }),
    // Everything that costs money or changes the catalog is refused while frozen.
    ...guarded({ ...llmActivities(llm), ...forgeLlmActivities(llm), registerForgedTool }, killSwitch),
  };
}

export interface SandboxQueueDeps {
  sandbox: SandboxBackend;
  killSwitch: KillSwitch;
  live: LiveOptions;
  registered: Omit<RegisteredToolDeps, 'sandbox'>;
  /** self-evolution's candidate image and replay (activities/evolve-sandbox.ts) */
  evolve: EvolveSandboxDeps;
  /** self-evolution's swap, probe and rollback of the control worker (activities/deploy.ts) */
  deploy: Omit<DeployActivityDeps, 'killSwitch'>;
}

/** The sandbox queue: Docker hosts only. */
export function createSandboxQueueActivities(deps: SandboxQueueDeps) {
  const { sandbox, killSwitch } = deps;
  return {
    ...guarded(createSandboxActivities(sandbox), killSwitch),
    ...createVerifyActivities({ sandbox, killSwitch, live: deps.live }),
    ...createRegisteredToolActivities({ ...deps.registered, sandbox, killSwitch }),
    ...createEvolveSandboxActivities({ ...deps.evolve, sandbox, killSwitch, egress: deps.registered.egress }),
    ...createDeployActivities({ ...deps.deploy, killSwitch }),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
export type SandboxActivities = ReturnType<typeof createSandboxQueueActivities>;
