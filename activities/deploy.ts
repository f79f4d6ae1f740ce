import { Context } from '@temporalio/activity';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { z } from 'zod';
import { type DeployPolicy, deployPolicySchema } from '../domain/deploy.ts';
import { describeError } from '../domain/errors.ts';
import type { TaskResult } from '../domain/task.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { createDeployer, type DeployDeps, type DeployTemporal } from '../services/evolution/deploy.ts';
import { recordRevision } from '../services/evolution/history.ts';
import { candidateTreeDir } from '../services/evolution/image.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guard } from './guard.ts';

/** The deployment's Temporal operations (infra/worker-deployment.ts, injected: activities do not import infra). */
export type DeploymentOps = Pick<DeployTemporal, 'describe' | 'setCurrent'>;

export interface DeployActivityDeps extends Omit<DeployDeps, 'temporal' | 'sql'> {
  sql: Sql;
  killSwitch: KillSwitch;
  deployments: DeploymentOps;
  temporal: { client: Client; controlQueue: string; sandboxQueue: string };
  policy: DeployPolicy;
}

const TASK_WORKFLOW = 'taskWorkflow';
const id = z.string().regex(/^[A-Za-z0-9._:-]+$/);
const buildId = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/);
const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);

const startSchema = z.object({
  buildId,
  image: z.string().min(1),
  imageDigest: digest,
  treeHash: z.string().regex(/^[a-f0-9]{64}$/),
  kind: z.enum(['install', 'evolve', 'rollback']),
  ref: z.string().min(1),
});
const probeSchema = z.object({ deployId: id, buildId, sinceIso: z.string().datetime(), probeNo: z.number().int().min(1) });
const retireSchema = z.object({ buildId, reason: z.string().min(1), sinceIso: z.string().datetime() });
const markSchema = z.object({
  buildId,
  status: z.enum(['starting', 'probing', 'promoted', 'rolled-back', 'retired', 'refused']),
  reason: z.string(),
  probes: z.unknown().optional(),
  revision: z.string().optional(),
  promoted: z.boolean().optional(),
});
const rollbackSchema = z.object({
  deployId: id,
  fromBuild: buildId,
  toBuild: buildId.nullable(),
  reason: z.string().min(1),
  metrics: z.unknown(),
  restoreMs: z.number().int().nullable(),
  terminated: z.array(z.string()),
});
const revisionSchema = z.object({
  deployId: id,
  buildId,
  subject: z.string().min(1).max(200),
  body: z.string().max(100_000),
  /** an evolve candidate's scratch tree, or an earlier commit to restore */
  candidateId: id.optional(),
  restore: z
    .string()
    .regex(/^[a-f0-9]{7,40}$/)
    .optional(),
});

/**
 * The deploy cycle's steps, on the sandbox queue (the Docker host: the new version's container
 * starts there). Run by a workflow pinned to the version being replaced, so the candidate never
 * measures or judges itself.
 */
export function createDeployActivities(deps: DeployActivityDeps) {
  const { client, controlQueue } = deps.temporal;
  const temporal: DeployTemporal = {
    describe: deps.deployments.describe,
    setCurrent: deps.deployments.setCurrent,
    async runTask({ workflowId, task, timeoutMs }) {
      const handle = await client.workflow
        .start(TASK_WORKFLOW, {
          workflowId,
          taskQueue: controlQueue,
          args: [{ task, sandboxQueue: deps.temporal.sandboxQueue }],
          workflowExecutionTimeout: timeoutMs,
        })
        .catch((err: unknown) => {
          // A retried probe finds the run its first attempt started.
          if ((err as { name?: string }).name === 'WorkflowExecutionAlreadyStartedError') return client.workflow.getHandle(workflowId);
          throw err;
        });
      try {
        return { result: (await handle.result()) as TaskResult };
      } catch (err) {
        return {
          error: err instanceof WorkflowFailedError && err.cause ? `${err.message}: ${describeError(err.cause)}` : describeError(err),
        };
      }
    },
    async versionWorkflows(deployment, build, sinceIso) {
      const out: { workflowId: string; runId: string; type: string; status: string }[] = [];
      const query = `TemporalWorkerDeploymentVersion = '${deployment}:${build}' AND StartTime >= '${sinceIso}'`;
      for await (const w of client.workflow.list({ query }))
        out.push({ workflowId: w.workflowId, runId: w.runId, type: w.type, status: w.status.name });
      return out;
    },
    async terminate(workflowId, runId, reason) {
      await client.workflow
        .getHandle(workflowId, runId)
        .terminate(reason)
        .catch(() => {}); // already ended
    },
  };
  const deployer = createDeployer({ ...deps, temporal });
  const beat = () => Context.current().heartbeat();

  return adapted({
    /** The policy the worker was configured with (FORGE_CONSENT_TIMEOUT_S, FORGE_PROBE_*), recorded in history. */
    async deployPolicy(): Promise<DeployPolicy> {
      return deployPolicySchema.parse(deps.policy);
    },
    /** Whether Forge is frozen now: a freeze in the probe window rolls the new version back. */
    async killSwitchState(): Promise<{ frozen: boolean }> {
      return { frozen: (await deps.killSwitch.state()).frozen };
    },
    /** Which version serves new workflows now. */
    async deploymentState(): Promise<{ current: string | null; ramping: string | null }> {
      const s = await temporal.describe(deps.deployment);
      return { current: s.current, ramping: s.ramping };
    },
    startVersion: async (raw: z.input<typeof startSchema>) => {
      await guard(deps.killSwitch, 'starting a control worker version');
      const input = parseActivityInput(startSchema, raw, 'startVersion');
      return deployer.startVersion({ ...input, timeoutMs: deps.policy.startTimeoutSeconds * 1000 }, beat);
    },
    /** The swap (guarded: no swap while frozen) or the rollback (never refused: it returns to the known-good version). */
    makeCurrent: async (raw: { buildId: string | null; rollback: boolean }) => {
      const input = parseActivityInput(z.object({ buildId: buildId.nullable(), rollback: z.boolean() }), raw, 'makeCurrent');
      if (!input.rollback) await guard(deps.killSwitch, 'making a new control worker version current');
      const t0 = Date.now();
      await temporal.setCurrent(deps.deployment, input.buildId);
      return { ms: Date.now() - t0 };
    },
    probeVersion: async (raw: z.input<typeof probeSchema>) => {
      const input = parseActivityInput(probeSchema, raw, 'probeVersion');
      return deployer.probe({ ...input, policy: deps.policy });
    },
    retireVersion: async (raw: z.input<typeof retireSchema>) => {
      const input = parseActivityInput(retireSchema, raw, 'retireVersion');
      return { terminated: await deployer.retire(input) };
    },
    markVersion: async (raw: z.input<typeof markSchema>) => {
      await deployer.markVersion(parseActivityInput(markSchema, raw, 'markVersion'));
    },
    appendRollback: async (raw: z.input<typeof rollbackSchema>) => {
      await deployer.appendRollback(parseActivityInput(rollbackSchema, raw, 'appendRollback'));
    },
    recordRevision: async (raw: z.input<typeof revisionSchema>) => {
      const input = parseActivityInput(revisionSchema, raw, 'recordRevision');
      const source = input.restore
        ? { restore: input.restore }
        : { tree: candidateTreeDir(deps.home, input.candidateId ?? 'missing-candidate') };
      return { revision: await recordRevision(deps.home, { ...input, ...source }) };
    },
  });
}

export type DeployActivities = ReturnType<typeof createDeployActivities>;
