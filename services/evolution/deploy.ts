import type Docker from 'dockerode';
import type { DeployPolicy, ProbeSample } from '../../domain/deploy.ts';
import { ForgeError } from '../../domain/errors.ts';
import { type Expectation, judgeReplay } from '../../domain/evidence.ts';
import type { TaskResult } from '../../domain/task.ts';
import type { Sql } from '../db.ts';
import { type Logger, log as rootLog } from '../log.ts';
import { ControlWorkerStartError, controlWorkers } from './control-worker.ts';

/**
 * The deploy cycle's steps on the Docker host (issue 12): start a version's control worker
 * container and wait until Temporal knows it, make a version current, probe the new one's health,
 * retire one (its unfinished workflows ended with a reason, its container removed), and the ledger
 * (deploy_versions, the append-only deploy_rollbacks). What is healthy is decided by the workflow
 * with domain/deploy.ts judgeProbe; this only measures.
 */

/** Temporal, as the deploy steps need it (injected: services do not import Temporal). */
export interface DeployTemporal {
  describe(
    deployment: string,
  ): Promise<{ current: string | null; ramping: string | null; versions: { buildId: string; drained: boolean }[] }>;
  setCurrent(deployment: string, buildId: string | null): Promise<void>;
  /** starts (or finds, by id) a task workflow on the control queue, which routes it to the current version, and waits for its result */
  runTask(input: { workflowId: string; task: string; timeoutMs: number }): Promise<{ result?: TaskResult; error?: string }>;
  /** workflows that started on a version since a time (visibility: TemporalWorkerDeploymentVersion) */
  versionWorkflows(
    deployment: string,
    buildId: string,
    sinceIso: string,
  ): Promise<{ workflowId: string; runId: string; type: string; status: string }[]>;
  terminate(workflowId: string, runId: string, reason: string): Promise<void>;
}

export interface DeployDeps {
  sql: Sql;
  docker: Docker;
  temporal: DeployTemporal;
  deployment: string;
  home: string;
  /** the control worker's environment besides what a version adds (Temporal, the database, the model, the queues) */
  workerEnv: Record<string, string>;
  user: { uid: number; gid: number };
  log?: Logger;
}

export interface VersionRow {
  build_id: string;
  image: string;
  image_digest: string;
  tree_hash: string;
  revision: string | null;
  kind: string;
  ref: string | null;
  status: string;
  reason: string | null;
  created_at: Date;
  promoted_at: Date | null;
}

export class VersionNotFoundError extends ForgeError {
  constructor(ref: string) {
    super(
      `no promoted harness revision or version ${ref}`,
      'VERSION_NOT_FOUND',
      'list them with forge evolve history, and pass a revision (a commit prefix) or a build id from there',
      { ref },
    );
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createDeployer(deps: DeployDeps) {
  const { sql, temporal, deployment } = deps;
  const workers = controlWorkers(deps.docker, deps.home);
  const log = deps.log ?? rootLog;

  async function recordVersion(v: { buildId: string; image: string; imageDigest: string; treeHash: string; kind: string; ref: string }) {
    await sql`
      insert into deploy_versions (build_id, image, image_digest, tree_hash, kind, ref, status)
      values (${v.buildId}, ${v.image}, ${v.imageDigest}, ${v.treeHash}, ${v.kind}, ${v.ref}, 'starting')
      on conflict (build_id) do nothing`;
  }

  /**
   * The version's container runs and its worker polls: Temporal lists the version in the deployment.
   * `beat` is called while waiting (the activity's heartbeat). A container that exits is an error
   * carrying its log; so is one that never polls within the time given.
   */
  async function startVersion(
    input: { buildId: string; image: string; imageDigest: string; treeHash: string; kind: string; ref: string; timeoutMs: number },
    beat: () => void = () => {},
  ): Promise<{ container: string; ms: number; started: boolean }> {
    const t0 = Date.now();
    await recordVersion(input);
    const { name, started } = await workers.ensure({
      deployment,
      buildId: input.buildId,
      image: input.image,
      env: deps.workerEnv,
      home: deps.home,
      user: deps.user,
    });
    for (;;) {
      beat();
      if ((await temporal.describe(deployment)).versions.some((v) => v.buildId === input.buildId)) break;
      const state = await workers.state(deployment, input.buildId);
      if (!state.running) throw new ControlWorkerStartError(name, state.why);
      if (Date.now() - t0 > input.timeoutMs)
        throw new ControlWorkerStartError(
          name,
          `its worker did not poll within ${Math.round(input.timeoutMs / 1000)} s: ${await workers.logTail(deployment, input.buildId)}`,
        );
      await sleep(500);
    }
    log.info('control worker version polling', { deployment, buildId: input.buildId, container: name, ms: Date.now() - t0 });
    return { container: name, ms: Date.now() - t0, started };
  }

  /**
   * Tasks a probe runs on the new version: recent tasks that completed in production calling only
   * read tools (a probe must change nothing outside Forge) and forging nothing, one per distinct text;
   * judged by "completes, forges nothing, calls the tools it called then".
   */
  async function probeTasks(n: number): Promise<{ task: string; expectations: Expectation[] }[]> {
    const rows = await sql<{ task: string; result: TaskResult }[]>`
      select t.task, t.result from tasks t
      where t.status = 'completed' and t.result->>'status' = 'completed'
        and coalesce(jsonb_array_length(t.result->'forged'), 0) = 0
        and t.workflow_id not like 'probe-%'
        and not exists (select 1 from session_tasks s where s.workflow_id = t.workflow_id)
        and not exists (
          select 1 from jsonb_array_elements(coalesce(t.result->'calls', '[]'::jsonb)) c
          left join tool_versions v on v.name = c->>'tool' and v.version = (c->>'version')::int
          where c->>'status' <> 'succeeded' or v.manifest->>'sideEffect' is distinct from 'read' or (v.manifest->>'destructive')::boolean)
      order by t.updated_at desc
      limit ${n * 20}`;
    const seen = new Set<string>();
    const out: { task: string; expectations: Expectation[] }[] = [];
    for (const r of rows) {
      const key = r.task.trim().toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      const tools = [...new Set((r.result.calls ?? []).map((c) => c.tool))];
      out.push({
        task: r.task,
        expectations: [{ kind: 'completes' }, { kind: 'forges-nothing' }, ...tools.map((tool) => ({ kind: 'uses-tool' as const, tool }))],
      });
      if (out.length >= n) break;
    }
    return out;
  }

  /** One probe of the new version: what runs, what beats, what the probe tasks did, and the live rates since the swap. */
  async function probe(input: {
    deployId: string;
    buildId: string;
    sinceIso: string;
    probeNo: number;
    policy: DeployPolicy;
  }): Promise<ProbeSample> {
    const state = await workers.state(deployment, input.buildId);
    const [hb] = await sql<{ age: number }[]>`
      select extract(epoch from now() - beat_at)::float8 as age from worker_heartbeats where build_id = ${input.buildId}`;
    const tasks = await probeTasks(1);
    const failures: string[] = [];
    let passed = 0;
    for (const [i, t] of tasks.entries()) {
      // One id per probe and task: a retried probe waits for the same run instead of starting another.
      const workflowId = `probe-${input.deployId}-${input.probeNo}-${i + 1}`;
      const run = await temporal.runTask({
        workflowId,
        task: t.task,
        timeoutMs: Math.max(30_000, input.policy.probeIntervalSeconds * 2000),
      });
      if (!run.result) {
        failures.push(`${workflowId}: ${run.error ?? 'no result'}`);
        continue;
      }
      const verdict = judgeReplay(t.expectations, {
        status: run.result.status,
        answer: run.result.answer ?? '',
        calls: run.result.calls ?? [],
        forged: run.result.forged ?? [],
      });
      if (verdict.pass) passed++;
      else failures.push(`"${t.task.slice(0, 80)}": ${verdict.reasons.join('; ')}`);
    }
    const live = (await temporal.versionWorkflows(deployment, input.buildId, input.sinceIso)).filter(
      (w) => !w.workflowId.startsWith('probe-'),
    );
    const ids = live.map((w) => w.workflowId);
    const [calls] = ids.length
      ? await sql<{ failed: number; total: number }[]>`
          select count(*) filter (where not success)::int as failed, count(*)::int as total
          from invocations where workflow_id = any(${ids})`
      : [{ failed: 0, total: 0 }];
    const taskIds = live.filter((w) => w.type === 'taskWorkflow' && w.status !== 'RUNNING').map((w) => w.workflowId);
    const [ended] = taskIds.length
      ? await sql<{ completed: number; failed: number }[]>`
          select count(*) filter (where result->>'status' = 'completed')::int as completed,
                 count(*) filter (where result->>'status' is distinct from 'completed')::int as failed
          from tasks where workflow_id = any(${taskIds})`
      : [{ completed: 0, failed: 0 }];
    return {
      at: new Date().toISOString(),
      containerRunning: state.running,
      ...(state.running ? {} : { containerWhy: state.why }),
      heartbeatAgeSeconds: hb ? Math.max(0, hb.age) : null,
      probeTasks: { passed, total: tasks.length, failures },
      liveCalls: calls ?? { failed: 0, total: 0 },
      liveTasks: ended ?? { completed: 0, failed: 0 },
    };
  }

  /**
   * Ends what started on a version since the deploy began (with the reason) and removes its
   * container; returns the workflows it ended. Workflows pinned to it from before (an evolve cycle
   * waiting for consent, begun while it was current) still need its worker: then the container
   * stays until they drain (forge up removes drained versions), or they would hang with none.
   */
  async function retire(input: { buildId: string; reason: string; sinceIso: string }): Promise<string[]> {
    const running = (await temporal.versionWorkflows(deployment, input.buildId, input.sinceIso)).filter((w) => w.status === 'RUNNING');
    for (const w of running) await temporal.terminate(w.workflowId, w.runId, input.reason);
    const ended = new Set(running.map((w) => w.workflowId));
    const pinned = (await temporal.versionWorkflows(deployment, input.buildId, new Date(0).toISOString())).filter(
      (w) => w.status === 'RUNNING' && !ended.has(w.workflowId),
    );
    if (pinned.length === 0) await workers.remove(deployment, input.buildId);
    else
      log.info('retired version keeps its container while workflows pinned to it run', {
        deployment,
        buildId: input.buildId,
        workflows: pinned.map((w) => w.workflowId),
      });
    return running.map((w) => w.workflowId);
  }

  async function markVersion(input: {
    buildId: string;
    status: string;
    reason: string;
    probes?: unknown;
    revision?: string;
    promoted?: boolean;
  }): Promise<void> {
    await sql`
      update deploy_versions set status = ${input.status}, reason = ${input.reason},
        probes = coalesce(${input.probes === undefined ? null : sql.json(input.probes as never)}::jsonb, probes),
        revision = coalesce(${input.revision ?? null}, revision),
        promoted_at = case when ${input.promoted ?? false} then coalesce(promoted_at, now()) else promoted_at end,
        updated_at = now()
      where build_id = ${input.buildId}`;
  }

  /** The rollback log's entry for a deploy; a retried append finds the first. */
  async function appendRollback(input: {
    deployId: string;
    fromBuild: string;
    toBuild: string | null;
    reason: string;
    metrics: unknown;
    restoreMs: number | null;
    terminated: string[];
  }): Promise<void> {
    await sql`
      insert into deploy_rollbacks (deploy_id, from_build, to_build, reason, metrics, restore_ms, terminated)
      values (${input.deployId}, ${input.fromBuild}, ${input.toBuild}, ${input.reason}, ${sql.json(input.metrics as never)},
              ${input.restoreMs}, ${input.terminated})
      on conflict (deploy_id) do nothing`;
  }

  return { startVersion, probe, probeTasks, retire, markVersion, appendRollback, workers };
}

export type Deployer = ReturnType<typeof createDeployer>;

// ---- reads, for the CLI and the doctor ----

export async function versionRows(sql: Sql, limit = 50): Promise<VersionRow[]> {
  return sql<VersionRow[]>`select * from deploy_versions order by created_at desc limit ${limit}`;
}

export async function versionRow(sql: Sql, buildId: string): Promise<VersionRow | null> {
  const [row] = await sql<VersionRow[]>`select * from deploy_versions where build_id = ${buildId}`;
  return row ?? null;
}

export interface RollbackRow {
  id: string;
  deploy_id: string;
  from_build: string;
  to_build: string | null;
  reason: string;
  metrics: unknown;
  restore_ms: number | null;
  terminated: string[];
  at: Date;
}

export async function rollbackRows(sql: Sql, limit = 50): Promise<RollbackRow[]> {
  return sql<RollbackRow[]>`select * from deploy_rollbacks order by at desc limit ${limit}`;
}
