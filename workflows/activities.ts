/**
 * The activities workflows call, one proxy per kind of work, each with its own timeout and retry
 * policy: a database write never runs under a model call's six minutes, and a sandbox job runs on
 * the sandbox task queue (Docker hosts). Workflow files destructure what they use from here.
 */
import { patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ControlActivities, SandboxActivities } from '../activities/index.ts';

type LlmCalls = Pick<
  ControlActivities,
  | 'agentTurn'
  | 'writeSpec'
  | 'extractApiSpec'
  | 'writeTests'
  | 'writeImplementation'
  | 'repairImplementation'
  | 'rewriteTool'
  | 'diagnoseFailure'
  | 'writeHarnessPatch'
>;
type Checks = Pick<ControlActivities, 'checkHarnessPatch'>;
export type DatabaseWork = Omit<ControlActivities, keyof LlmCalls | keyof Checks>;

/** Model calls: minutes each; rate limits and overload say when to come back (nextRetryDelay). */
export const llmCalls = proxyActivities<LlmCalls>({
  startToCloseTimeout: '6 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
});

/** Bookkeeping, catalog reads and writes: seconds each, retried patiently (a database restart). */
export const databaseWork = proxyActivities<DatabaseWork>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '20 seconds', maximumAttempts: 10 },
});

/**
 * The same bookkeeping as local activities: run by the worker that runs the workflow, right after
 * the workflow task that asked for them, with no round trip through a task queue — the steps of a
 * task or a forge cycle that cost a few milliseconds of Postgres each cost that, instead of a
 * Temporal dispatch each. A worker killed mid-step re-runs it (every one is keyed, so idempotent).
 * No heartbeat: a local activity lives and dies with its workflow task.
 */
const localDatabaseWork = proxyLocalActivities<DatabaseWork>({
  startToCloseTimeout: '1 minute',
  // Past this, a retry waits on a durable timer instead of in the worker's memory.
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '20 seconds', maximumAttempts: 10 },
});

/** Workflows that started before bookkeeping became local replay on activities, as their histories say. */
export const LOCAL_BOOKKEEPING = 'local-bookkeeping';

/** The bookkeeping proxies for this workflow: local ones, unless its history predates them. Call it in the workflow, once. */
export function bookkeeping(): DatabaseWork {
  return patched(LOCAL_BOOKKEEPING) ? localDatabaseWork : databaseWork;
}

/**
 * Workflows that started before consecutive bookkeeping steps were folded into one local activity
 * (beginTask, completeTask with the last turn's step, beginForgeRun, finishForge, local failure
 * evidence) replay on the separate steps, as their histories say.
 */
export const FOLDED_BOOKKEEPING = 'folded-bookkeeping';

/**
 * The bookkeeping proxies, and whether this workflow folds consecutive steps into one local
 * activity: each local activity is a trip from the workflow to the worker's activity side and back
 * (an activation each), so a workflow task with three of them takes three trips. Only workflows on
 * local bookkeeping fold. Call it in the workflow, once, where bookkeeping() was called.
 */
export function foldedBookkeeping(): { steps: DatabaseWork; folded: boolean } {
  if (!patched(LOCAL_BOOKKEEPING)) return { steps: databaseWork, folded: false };
  return { steps: localDatabaseWork, folded: patched(FOLDED_BOOKKEEPING) };
}

/** Sandbox jobs on their own task queue; they heartbeat, so a dead worker is noticed fast. */
export function sandboxJobs(taskQueue: string, maximumAttempts = 5) {
  return proxyActivities<SandboxActivities>({
    taskQueue,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts },
  });
}

/** A patch's checks on a scratch tree (copy, type check, lint, unit tests): minutes of child processes, retried once. */
export const treeChecks = proxyActivities<Checks>({
  startToCloseTimeout: '10 minutes',
  // A worker killed mid-check is noticed in seconds, not after the ten minutes (the interceptor beats every 2 s).
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', maximumAttempts: 2 },
});

/** Self-evolution's Docker-host jobs: building a candidate image (minutes) and replaying it (up to an hour); they heartbeat. */
export function evolveJobs(taskQueue: string) {
  return proxyActivities<Pick<SandboxActivities, 'buildCandidateImage' | 'replayCandidate'>>({
    taskQueue,
    startToCloseTimeout: '60 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 3 },
  });
}

/** The deploy cycle's steps on the Docker host: starting a version waits minutes for its worker (heartbeats); the rest are seconds. */
export function deploySteps(taskQueue: string) {
  type Steps = Pick<
    SandboxActivities,
    | 'deployPolicy'
    | 'killSwitchState'
    | 'deploymentState'
    | 'startVersion'
    | 'makeCurrent'
    | 'probeVersion'
    | 'retireVersion'
    | 'markVersion'
    | 'appendRollback'
    | 'recordRevision'
  >;
  const quick = proxyActivities<Omit<Steps, 'startVersion' | 'probeVersion'>>({
    taskQueue,
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 10 },
  });
  const { startVersion } = proxyActivities<Pick<Steps, 'startVersion'>>({
    taskQueue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 3 },
  });
  // A probe runs tasks on the new version: as long as a task may take, and never retried as a new probe (the next interval probes again).
  const { probeVersion } = proxyActivities<Pick<Steps, 'probeVersion'>>({
    taskQueue,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 2 },
  });
  // Named, not spread: a proxy has no own keys to spread.
  const { deployPolicy, killSwitchState, deploymentState, makeCurrent, retireVersion, markVersion, appendRollback, recordRevision } = quick;
  return {
    deployPolicy,
    killSwitchState,
    deploymentState,
    makeCurrent,
    retireVersion,
    markVersion,
    appendRollback,
    recordRevision,
    startVersion,
    probeVersion,
  };
}
