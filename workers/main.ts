/**
 * The Forge worker: one process serving the control queue (workflows, LLM, Postgres, registry)
 * and the sandbox queue (Docker). Split them across hosts by running it with
 * FORGE_WORKER_ROLE=control or =sandbox; the default serves both.
 */
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createControlActivities, createSandboxQueueActivities } from '../activities/index.ts';
import { activityScope } from '../activities/scope.ts';
import type { ForgeConfig } from '../domain/config.ts';
import { formatForRepair } from '../domain/verification.ts';
import { dockerClient } from '../infra/docker.ts';
import { migrate } from '../infra/migrate.ts';
import { databaseUrl, openDatabase } from '../infra/postgres.ts';
import { freePort } from '../infra/processes.ts';
import { tarStream } from '../infra/sandbox-image/tar.ts';
import { ensureSandboxImage, rootfsEntries, sharedLibraries } from '../infra/sandbox-image.ts';
import { temporalEndpoint } from '../infra/temporal.ts';
import { workerDeployments } from '../infra/worker-deployment.ts';
import { embedderFor } from '../services/catalog/embeddings.ts';
import { createRegistry, type Registry } from '../services/catalog/registry.ts';
import { watchRegistry } from '../services/catalog/watcher.ts';
import { config, controlDeploymentName, deployPolicy, sandboxDeploymentName, toolsDir } from '../services/config.ts';
import { createKillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { candidateWorkerEnv, controlWorkerEnv } from '../services/evolution/replay.ts';
import { createLlm, recordLlmUsage } from '../services/llm/client.ts';
import { llmEndpoint } from '../services/llm/endpoint.ts';
import { log } from '../services/log.ts';
import { setSandboxDeployment } from '../services/sandbox/container.ts';
import { closeEgressPools } from '../services/sandbox/egress-pool.ts';
import { createSandbox, reapOrphans } from '../services/sandbox/index.ts';
import { verifyTool } from '../services/sandbox/stages/index.ts';
import { decideApprovalUpdate } from '../workflows/definitions.ts';
import { workflowBundle } from './bundle.ts';
import { heartbeatInterceptors } from './heartbeat.ts';
import { installTemporalLogging } from './logging.ts';

export type WorkerRole = ForgeConfig['FORGE_WORKER_ROLE'];

export interface RunningWorkers {
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * A control worker with a build id is one version of the control worker's Temporal deployment
 * (issue 12): workflows stay on the version they started on (PINNED), and new ones go to whichever
 * version is current. Without one (tests, `forge worker` by hand) it is unversioned.
 */
function versioning(cfg: ForgeConfig): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  if (!cfg.FORGE_BUILD_ID) return {};
  return {
    workerDeploymentOptions: {
      useWorkerVersioning: true,
      version: { deploymentName: controlDeploymentName(cfg), buildId: cfg.FORGE_BUILD_ID },
      defaultVersioningBehavior: 'PINNED',
    },
  };
}

/** The heartbeat the deploy probe reads (worker_heartbeats): every 5 s while the worker runs. */
function beatForVersion(sql: Sql, buildId: string): () => Promise<void> {
  const beat = () =>
    sql`insert into worker_heartbeats (build_id, host, beat_at) values (${buildId}, ${os.hostname()}, now())
        on conflict (build_id) do update set host = excluded.host, beat_at = now()`.catch((err: unknown) =>
      log.warn('could not write the worker heartbeat', { error: String(err) }),
    );
  void beat();
  const timer = setInterval(beat, 5000);
  return async () => clearInterval(timer);
}

export async function startWorkers(cfg: ForgeConfig, role: WorkerRole = 'all'): Promise<RunningWorkers> {
  const endpoint = temporalEndpoint(cfg);
  const connection = await NativeConnection.connect({
    address: endpoint.address,
    tls: cfg.TEMPORAL_TLS || cfg.TEMPORAL_API_KEY ? true : undefined,
    apiKey: cfg.TEMPORAL_API_KEY,
  });
  const workers: Worker[] = [];
  const closers: (() => Promise<void>)[] = [];
  // Both roles need the kill switch, which lives in Postgres.
  const sql = await openDatabase(cfg);
  closers.push(() => sql.end());
  const killSwitch = createKillSwitch(sql);
  let registry: Registry | undefined;

  if (role !== 'sandbox') {
    const llmTarget = llmEndpoint(cfg);
    if (llmTarget.scripted) log.warn('no ANTHROPIC_API_KEY: using the scripted model server', { url: llmTarget.baseURL });
    const llm = createLlm({ ...llmTarget, model: cfg.FORGE_MODEL, recordUsage: recordLlmUsage(sql), scope: activityScope });
    registry = createRegistry({ sql, root: toolsDir(cfg), embedder: embedderFor(cfg) });
    await registry.recover();
    workers.push(
      await Worker.create({
        connection,
        namespace: cfg.TEMPORAL_NAMESPACE,
        taskQueue: cfg.FORGE_TASK_QUEUE,
        workflowBundle: await workflowBundle(path.join(cfg.home, 'cache')),
        activities: createControlActivities({
          sql,
          registry,
          llm,
          killSwitch,
          dailyForgeBudget: cfg.FORGE_DAILY_FORGE_BUDGET,
          home: cfg.home,
        }),
        maxCachedWorkflows: 200,
        interceptors: heartbeatInterceptors,
        ...versioning(cfg),
      }),
    );
    if (cfg.FORGE_BUILD_ID) closers.unshift(beatForVersion(sql, cfg.FORGE_BUILD_ID));
  }

  if (role !== 'control') {
    const docker = dockerClient(cfg);
    setSandboxDeployment(sandboxDeploymentName(cfg));
    await reapOrphans(docker);
    await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
    const sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: cfg.FORGE_POOL_SIZE });
    closers.unshift(() => sandbox.close());
    // Tool versions' egress networks and proxies go with the worker (a crash leaves them to reapEgress).
    closers.unshift(() => closeEgressPools());
    if (cfg.FORGE_WATCH_TOOLS) {
      // A person's edit to a tool folder is re-verified in the sandbox before it becomes a version.
      // The worker that has the sandbox watches: with the roles apart (forge up), this one; the
      // control worker's container does not (FORGE_WATCH_TOOLS=0 there), so one process watches.
      registry ??= createRegistry({ sql, root: toolsDir(cfg), embedder: embedderFor(cfg) });
      const watcher = await watchRegistry(registry, {
        async verify(dir) {
          const report = await verifyTool({ dir, live: false }, sandbox);
          return report.passed ? { ok: true } : { ok: false, reason: formatForRepair(report).slice(0, 2000) };
        },
        onChange: (event) => log.info('tool folder change', event),
      });
      closers.unshift(() => watcher.close());
    }
    workers.push(
      await Worker.create({
        connection,
        namespace: cfg.TEMPORAL_NAMESPACE,
        taskQueue: cfg.FORGE_SANDBOX_QUEUE,
        activities: createSandboxQueueActivities({
          sandbox,
          killSwitch,
          live: { docker, image: cfg.FORGE_SANDBOX_IMAGE },
          registered: { toolsDir: toolsDir(cfg), egress: { docker, image: cfg.FORGE_SANDBOX_IMAGE } },
          // Self-evolution's candidate image and replay: the Docker host builds and runs candidates.
          evolve: {
            sql,
            databaseUrl: databaseUrl(cfg),
            migrate,
            docker,
            home: cfg.home,
            toolsDir: toolsDir(cfg),
            workerEnv: candidateWorkerEnv(cfg, endpoint.address),
            kit: { nodeRootfs: (node) => rootfsEntries(node, []), sharedLibraries, tar: tarStream },
            // On the embedded PGlite (one database) a replay's catalog gets a PGlite of its own, in memory.
            scratchServer: async () => (await import('../infra/pglite-server.ts')).servePglite('memory://', await freePort()),
            temporal: {
              connection,
              namespace: cfg.TEMPORAL_NAMESPACE,
              interceptors: heartbeatInterceptors,
              approvalUpdate: decideApprovalUpdate,
            },
          },
          deploy: {
            sql,
            docker,
            deployment: controlDeploymentName(cfg),
            deployments: workerDeployments(
              new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE }).workflowService,
              cfg.TEMPORAL_NAMESPACE,
            ),
            temporal: {
              client: new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE }),
              controlQueue: cfg.FORGE_TASK_QUEUE,
              sandboxQueue: cfg.FORGE_SANDBOX_QUEUE,
            },
            home: cfg.home,
            workerEnv: controlWorkerEnv(cfg, endpoint.address),
            user: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
            policy: deployPolicy(cfg),
          },
        }),
        maxConcurrentActivityTaskExecutions: Math.max(2, cfg.FORGE_POOL_SIZE * 2),
        interceptors: heartbeatInterceptors,
      }),
    );
  }

  log.info('worker started', {
    role,
    ...(cfg.FORGE_BUILD_ID ? { buildId: cfg.FORGE_BUILD_ID, deployment: controlDeploymentName(cfg) } : {}),
    temporal: endpoint.address,
    namespace: cfg.TEMPORAL_NAMESPACE,
    queues: [cfg.FORGE_TASK_QUEUE, cfg.FORGE_SANDBOX_QUEUE],
  });
  let running: Promise<void> | undefined;
  return {
    run() {
      running ??= Promise.all(workers.map((w) => w.run())).then(async () => {
        for (const close of closers) await close();
        await connection.close();
      });
      return running;
    },
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  installTemporalLogging();
  const cfg = config();
  const workers = await startWorkers(cfg, cfg.FORGE_WORKER_ROLE);
  // Worker.run() handles SIGINT/SIGTERM itself (graceful shutdown); once it has drained and the
  // closers ran, leftover keep-alive sockets must not hold the process up.
  await workers.run();
  process.exit(0);
}
