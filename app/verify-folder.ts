import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ForgeConfig } from '../domain/config.ts';
import { ComponentDownError, ForgeError, FROZEN_FAILURE, InvalidInputError } from '../domain/errors.ts';
import type { VerifyReport } from '../domain/verification.ts';
import { VERIFY_FILES, verifyFolderRequestSchema } from '../domain/verify-folder.ts';
import { portOpen, recordedPid } from '../infra/processes.ts';
import type { Session } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle } from './cycles.ts';

export type { StageResult, VerifyReport } from '../domain/verification.ts';

/**
 * `forge sandbox verify <dir>`: on the running Forge when it is up — the sandbox worker verifies the
 * folder's files with its static checker and warm pool already up (workflows/verify.ts) — else in
 * this process as before (app/sandbox.ts verifyToolFolder: a cold type-check and cold containers,
 * about ten seconds). Same report either way; `onLocal` says why it ran here. The in-process path
 * (TypeScript, Docker) is loaded only when it is needed, so the common case starts fast.
 */
export interface VerifyFolderAsk {
  /** a folder with tool.ts, tool.test.ts and optionally api-spec.json */
  dir: string;
  /** the name the tool would be registered under; its manifest must match */
  name?: string;
  /** whether to run the live stage (a real call through the egress proxy) */
  live: boolean;
  /** real values for the env variables the manifest declares, for the live call only */
  env: Record<string, string>;
  liveInput?: unknown;
}

export interface VerifyFolderHooks {
  /** once, when the verification runs in this process, with why */
  onLocal?: (why: string) => void;
  /** once, when the running Forge's verification workflow has started */
  onStarted?: (started: StartedCycle) => void;
}

/** A worker whose last poll is older than this is gone (an idle one polls again at least every minute). */
const POLLER_FRESH_MS = 90_000;
/** How long the verification may wait for a worker to take it before this process does it instead. */
const UNTAKEN_MS = 15_000;
/**
 * When the CLI first looks whether a worker took the verification, then every second: most
 * verifications end before it, and the first describe costs this process 0.05–0.15 CPU-s (the
 * protobuf decoders it needs are generated on first use), taken from the worker it waits for.
 */
const FIRST_LOOK_MS = 3_000;

/** The folder's verification files that exist; refused, as verifyTool refuses it, when it has none. */
export async function readVerifyFiles(dir: string): Promise<Record<string, string>> {
  const abs = path.resolve(dir);
  const contents = await Promise.all(
    VERIFY_FILES.map((name) =>
      readFile(path.join(abs, name), 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      }),
    ),
  );
  const files = Object.fromEntries(VERIFY_FILES.flatMap((name, i) => (contents[i] === undefined ? [] : [[name, contents[i]!]])));
  if (Object.keys(files).length === 0) throw new InvalidInputError('tool directory', `${abs} has none of ${VERIFY_FILES.join(', ')}`);
  return files;
}

/** Whether a live worker polls the queue: one that polled within the last minute and a half (Temporal lists dead ones for minutes). */
async function livePoller(client: Client, taskQueue: string, kind: 'workflow' | 'activity'): Promise<boolean> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: kind === 'workflow' ? 1 : 2,
  });
  const now = Date.now();
  return (res.pollers ?? []).some((p) => {
    const seconds = p.lastAccessTime?.seconds;
    return seconds != null && now - Number(seconds) * 1000 < POLLER_FRESH_MS;
  });
}

/** Why the running Forge cannot verify the folder, or null when it can. Cheap when Forge is down. */
export async function whyNotOnForge(session: Session, ask: Pick<VerifyFolderAsk, 'env'>): Promise<string | null> {
  const { cfg } = session;
  const secrets = Object.keys(ask.env);
  // A value sent to the worker would be written into the workflow's history.
  if (secrets.length)
    return `--env ${secrets.join(', ')} stays in this process (a value sent to the worker would be kept in Temporal's history)`;
  if (!cfg.TEMPORAL_ADDRESS && !(await portOpen(cfg.TEMPORAL_PORT))) return 'Forge is not up (no Temporal server)';
  const worker = recordedPid(cfg.home, 'worker');
  if (worker && !worker.running) return `Forge's sandbox worker (pid ${worker.pid}) has exited`;
  let client: Client;
  try {
    client = await session.temporal();
  } catch (err) {
    if (err instanceof ComponentDownError) return 'Forge is not up (Temporal does not answer)';
    throw err;
  }
  const [sandbox, control] = await Promise.all([
    livePoller(client, cfg.FORGE_SANDBOX_QUEUE, 'activity'),
    livePoller(client, cfg.FORGE_TASK_QUEUE, 'workflow'),
  ]);
  if (!sandbox) return `Forge is not up (no sandbox worker polls ${cfg.FORGE_SANDBOX_QUEUE})`;
  if (!control) return `Forge is not up (no control worker polls ${cfg.FORGE_TASK_QUEUE})`;
  return null;
}

class NotTaken extends Error {}

/**
 * Runs the verification workflow and waits for its report. When no worker can run it — the control
 * worker keeps failing its workflow task (a worker built before this workflow existed), or no
 * sandbox worker takes the activity within UNTAKEN_MS — it is terminated and NotTaken thrown.
 */
async function verifyOnForge(session: Session, files: Record<string, string>, ask: VerifyFolderAsk, hooks: VerifyFolderHooks) {
  const request = verifyFolderRequestSchema.parse({
    sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE,
    files,
    ...(ask.name ? { manifestName: ask.name } : {}),
    live: ask.live,
    ...(ask.liveInput !== undefined ? { liveInput: ask.liveInput } : {}),
  });
  const started = await startCycle(session, 'verify', [request], ask.name ? { toolName: ask.name } : {});
  hooks.onStarted?.(started);
  const handle = await cycleHandle(session, 'verify', started);
  const since = Date.now();
  let done = false;
  const watch = async (): Promise<never> => {
    for (let wait = FIRST_LOOK_MS; ; wait = 1000) {
      await new Promise((r) => setTimeout(r, wait).unref());
      if (done) return new Promise<never>(() => {});
      const raw = (await handle.describe()).raw;
      const stuckTask = (raw.pendingWorkflowTask?.attempt ?? 0) >= 3;
      const untaken = (raw.pendingActivities ?? []).some((a) => !a.lastStartedTime && Date.now() - since > UNTAKEN_MS);
      const unstarted = !raw.pendingActivities?.length && raw.pendingWorkflowTask && Date.now() - since > UNTAKEN_MS;
      if (stuckTask || untaken || unstarted) {
        await handle.terminate('no worker of the running Forge could run it; verified in the CLI instead').catch(() => {});
        throw new NotTaken(
          stuckTask
            ? "the running control worker cannot run the verification workflow (built before it? run forge up to install this tree's)"
            : 'no worker of the running Forge took the verification',
        );
      }
    }
  };
  try {
    return await Promise.race([handle.result() as Promise<VerifyReport>, watch()]);
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause: Error | undefined = err.cause?.cause instanceof Error ? err.cause.cause : err.cause;
      if (cause instanceof ApplicationFailure && cause.type === FROZEN_FAILURE) throw new NotTaken(`Forge is frozen (${cause.message})`);
      throw new ForgeError(
        `the running Forge could not verify ${ask.dir}: ${cause?.message ?? err.message}`,
        'VERIFY_FAILED',
        started.uiUrl ? `see the workflow: ${started.uiUrl}` : `see workflow ${started.workflowId} in the Temporal UI`,
      );
    }
    throw err;
  } finally {
    done = true;
  }
}

/** Verifies a tool folder on the running Forge when it is up, else in this process (saying why through onLocal). */
export async function verifyFolder(session: Session, ask: VerifyFolderAsk, hooks: VerifyFolderHooks = {}): Promise<VerifyReport> {
  const files = await readVerifyFiles(ask.dir);
  const why = await whyNotOnForge(session, ask);
  if (why === null) {
    try {
      return await verifyOnForge(session, files, ask, hooks);
    } catch (err) {
      if (!(err instanceof NotTaken)) throw err;
      return verifyHere(session.cfg, ask, err.message, hooks);
    }
  }
  return verifyHere(session.cfg, ask, why, hooks);
}

async function verifyHere(cfg: ForgeConfig, ask: VerifyFolderAsk, why: string, hooks: VerifyFolderHooks): Promise<VerifyReport> {
  hooks.onLocal?.(why);
  const { verifyToolFolder } = await import('./sandbox.ts');
  return verifyToolFolder(cfg, ask);
}
