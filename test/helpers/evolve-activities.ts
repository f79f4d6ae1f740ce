import type { NativeConnection } from '@temporalio/worker';
import type Docker from 'dockerode';
import { createEvolveSandboxActivities } from '../../activities/evolve-sandbox.ts';
import type { ForgeConfig } from '../../domain/config.ts';
import { migrate } from '../../infra/migrate.ts';
import { servePglite } from '../../infra/pglite-server.ts';
import { freePort } from '../../infra/processes.ts';
import { tarStream } from '../../infra/sandbox-image/tar.ts';
import { rootfsEntries, sharedLibraries } from '../../infra/sandbox-image.ts';
import { createKillSwitch } from '../../services/control/kill-switch.ts';
import type { Sql } from '../../services/db.ts';
import { candidateWorkerEnv } from '../../services/evolution/replay.ts';
import type { Sandbox } from '../../services/sandbox/index.ts';
import { heartbeatInterceptors } from '../../workers/heartbeat.ts';
import { decideApprovalUpdate } from '../../workflows/definitions.ts';

/** The sandbox queue's evolve activities over a test's own production (database, tools folder), wired as workers/main.ts wires them. */
export function evolveSandboxActivities(opts: {
  cfg: ForgeConfig;
  sql: Sql;
  databaseUrl: string;
  home: string;
  toolsDir: string;
  docker: Docker;
  sandbox: Sandbox;
  connection: NativeConnection;
}) {
  const { cfg, sql, docker } = opts;
  return createEvolveSandboxActivities({
    sql,
    databaseUrl: opts.databaseUrl,
    migrate,
    docker,
    home: opts.home,
    toolsDir: opts.toolsDir,
    workerEnv: candidateWorkerEnv(cfg, cfg.TEMPORAL_ADDRESS ?? '127.0.0.1:7233'),
    kit: { nodeRootfs: (node) => rootfsEntries(node, []), sharedLibraries, tar: tarStream },
    scratchServer: async () => servePglite('memory://', await freePort()),
    temporal: {
      connection: opts.connection,
      namespace: cfg.TEMPORAL_NAMESPACE,
      interceptors: heartbeatInterceptors,
      approvalUpdate: decideApprovalUpdate,
    },
    sandbox: opts.sandbox,
    killSwitch: createKillSwitch(sql),
    egress: { docker, image: cfg.FORGE_SANDBOX_IMAGE },
  });
}
