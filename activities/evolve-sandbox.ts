import { asyncLocalStorage, Context } from '@temporalio/activity';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure, type UpdateDefinition } from '@temporalio/common';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { z } from 'zod';
import { describeError } from '../domain/errors.ts';
import { type CandidateImage, type ReplayReport, replayRequestSchema } from '../domain/evolve.ts';
import type { TaskResult } from '../domain/task.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import { candidateTreeDir, createWorkerImages, type ImageKit } from '../services/evolution/image.ts';
import { type RecordedCall, type ReplayDeps, type ReplayTemporal, replayCandidate, replayDryRun } from '../services/evolution/replay.ts';
import { log } from '../services/log.ts';
import type { RegisteredToolDeps } from '../services/sandbox/run-registered.ts';
import type { SandboxBackend } from '../services/sandbox/types.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guard, guarded } from './guard.ts';
import { createRegisteredToolActivities, createSandboxActivities, createVerifyActivities } from './sandbox.ts';

/** The decision `forge approve|reject` sends (workflows/definitions.ts decideApprovalUpdate, injected: activities do not import workflows). */
export type ApprovalUpdate = UpdateDefinition<unknown, [{ approvalId: string; approve: boolean; by?: string; answer?: string }], string>;

/** What the replay needs (services/evolution/replay.ts), plus the image kit and the Temporal pieces this layer turns into its ReplayTemporal. */
export type EvolveSandboxDeps = Pick<
  ReplayDeps,
  'sql' | 'databaseUrl' | 'migrate' | 'docker' | 'home' | 'toolsDir' | 'workerEnv' | 'scratchServer'
> & {
  /** infra's rootfs and tar pieces, for the worker image */
  kit: ImageKit;
  temporal: {
    connection: NativeConnection;
    namespace: string;
    interceptors?: WorkerOptions['interceptors'];
    approvalUpdate: ApprovalUpdate;
  };
};

/** The workflow type workflows/index.ts exports for a task (by name: activities do not import workflows). */
const TASK_WORKFLOW = 'taskWorkflow';
/** Who the approvals ledger says decided what a replayed task asked. */
const REPLAY_DECIDER = 'evolve-replay';

const buildInputSchema = z.object({
  candidateId: z.string().regex(/^[A-Za-z0-9._:-]+$/),
  treeHash: z.string().regex(/^[a-f0-9]{64}$/),
});
const toolRefSchema = z.object({ name: z.string().min(1), version: z.number().int().positive() }).passthrough();
const casesRefSchema = toolRefSchema.extend({ inputs: z.array(z.unknown()), candidateSource: z.string().optional() });

const currentContext = (): Context | undefined => (asyncLocalStorage.getStore() ? Context.current() : undefined);

/**
 * The sandbox activities a candidate's workflows get during its replay, over the scratch tools
 * folder: a write tool's call is never run — answered with the output production's run of the
 * replayed task had for the same call, else as a dry run (its regression cases always dry) — and
 * verification never makes a live call. Nothing of evolution itself: a candidate cannot start a
 * replay or a build.
 */
function replaySandboxActivities(deps: {
  sandbox: SandboxBackend;
  killSwitch: KillSwitch;
  toolsDir: string;
  egress: RegisteredToolDeps['egress'];
  /** production's calls of each replayed task, by the replayed workflow's id */
  recorded: ReadonlyMap<string, readonly RecordedCall[]>;
}) {
  const { sandbox, killSwitch, toolsDir } = deps;
  /** The calls production's run of the workflow asking made (a task's calls are its own activities). */
  const recordedFor = () => deps.recorded.get(currentContext()?.info.workflowExecution?.workflowId ?? '') ?? [];
  const registered = createRegisteredToolActivities({ sandbox, toolsDir, egress: deps.egress, killSwitch });
  return {
    ...guarded(createSandboxActivities(sandbox), killSwitch),
    ...createVerifyActivities({ sandbox, killSwitch }),
    async sandboxRunRegisteredTool(raw: Parameters<typeof registered.sandboxRunRegisteredTool>[0]) {
      const ref = toolRefSchema.safeParse(raw);
      const dry = ref.success ? await replayDryRun(toolsDir, ref.data, recordedFor()) : undefined;
      return dry ?? registered.sandboxRunRegisteredTool(raw);
    },
    async sandboxRunCases(raw: Parameters<typeof registered.sandboxRunCases>[0]) {
      const ref = casesRefSchema.safeParse(raw);
      const dry = ref.success ? await replayDryRun(toolsDir, ref.data) : undefined;
      return dry ? ref.data!.inputs.map(() => ({ ok: true, output: dry.output, durationMs: 0 })) : registered.sandboxRunCases(raw);
    },
  };
}

/**
 * Self-evolution's steps on the sandbox queue (the Docker host): the candidate's worker image, and
 * its replay in throwaway containers against a scratch catalog (services/evolution/). Both are
 * refused while frozen; a freeze during a replay stops it (everything removed), and the cycle waits.
 */
export function createEvolveSandboxActivities(
  deps: EvolveSandboxDeps & { sandbox: SandboxBackend; killSwitch: KillSwitch; egress: RegisteredToolDeps['egress'] },
) {
  const images = createWorkerImages({ docker: deps.docker, kit: deps.kit });
  const { connection, namespace } = deps.temporal;
  const client = new Client({ connection, namespace });

  const temporal: ReplayTemporal = {
    async startSandboxWorker({ taskQueue, toolsDir, recorded }) {
      const worker = await Worker.create({
        connection,
        namespace,
        taskQueue,
        activities: replaySandboxActivities({
          sandbox: deps.sandbox,
          killSwitch: deps.killSwitch,
          toolsDir,
          egress: deps.egress,
          recorded,
        }),
        interceptors: deps.temporal.interceptors,
        maxConcurrentActivityTaskExecutions: 4,
      });
      const running = worker.run();
      return {
        async shutdown() {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running.catch((err: unknown) => log.warn('replay sandbox worker ended with an error', { error: describeError(err) }));
        },
      };
    },
    async runTask({ workflowId, taskQueue, sandboxQueue, task, limits, sessionId, timeoutMs }) {
      const handle = await client.workflow.start(TASK_WORKFLOW, {
        workflowId,
        taskQueue,
        args: [{ task, sandboxQueue, ...(limits ? { limits } : {}), ...(sessionId ? { sessionId } : {}) }],
        // A replay a crashed attempt left behind ends on its own.
        workflowExecutionTimeout: timeoutMs,
      });
      try {
        return { result: (await handle.result()) as TaskResult };
      } catch (err) {
        return {
          error: err instanceof WorkflowFailedError && err.cause ? `${err.message}: ${describeError(err.cause)}` : describeError(err),
        };
      }
    },
    async decideApproval({ workflowId, approvalId, approve }) {
      await client.workflow
        .getHandle(workflowId)
        .executeUpdate(deps.temporal.approvalUpdate, { args: [{ approvalId, approve, by: REPLAY_DECIDER }] });
    },
    async terminate(workflowId, reason) {
      await client.workflow
        .getHandle(workflowId)
        .terminate(reason)
        .catch(() => {}); // already ended
    },
    async terminateLeftovers(taskQueue, reason) {
      let n = 0;
      try {
        for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
          await client.workflow
            .getHandle(w.workflowId, w.runId)
            .terminate(reason)
            .catch(() => {});
          n++;
        }
      } catch (err) {
        log.warn('could not list leftover replay workflows', { taskQueue, error: describeError(err) });
      }
      return n;
    },
  };

  return adapted({
    /** The worker image of the tree the candidate's checks left (FORGE_HOME/evolve/<id>/tree); a tree built before is reused. */
    async buildCandidateImage(raw: z.input<typeof buildInputSchema>): Promise<CandidateImage> {
      const input = parseActivityInput(buildInputSchema, raw, 'buildCandidateImage input');
      await guard(deps.killSwitch, 'building a candidate image');
      const built = await images.buildTreeImage({ tree: candidateTreeDir(deps.home, input.candidateId), treeHash: input.treeHash });
      return { image: built.image, digest: built.digest, reused: built.reused };
    },

    /** The candidate replayed in throwaway containers against a scratch catalog, judged here; everything removed after. */
    async replayCandidate(raw: z.input<typeof replayRequestSchema>): Promise<ReplayReport> {
      const req = parseActivityInput(replayRequestSchema, raw, 'replayCandidate input');
      await guard(deps.killSwitch, 'replaying a candidate');
      const ctx = currentContext();
      try {
        return await replayCandidate(
          {
            sql: deps.sql,
            databaseUrl: deps.databaseUrl,
            migrate: deps.migrate,
            docker: deps.docker,
            home: deps.home,
            toolsDir: deps.toolsDir,
            workerEnv: deps.workerEnv,
            scratchServer: deps.scratchServer,
            temporal,
            killSwitch: deps.killSwitch,
          },
          req,
          {
            signal: ctx?.cancellationSignal,
            runKey: ctx ? `a${ctx.info.attempt}` : undefined,
            progress: (note) => ctx?.heartbeat(note),
          },
        );
      } catch (err) {
        if (ctx?.cancellationSignal.aborted)
          throw new CancelledFailure('the replay was cancelled; its container, worker and scratch database were removed');
        throw err;
      }
    },
  });
}
