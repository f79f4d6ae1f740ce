import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { describeError, ForgeError } from '../domain/errors.ts';
import { dockerAnswers, dockerClient, ensureDockerEngine } from '../infra/docker.ts';
import { ensureEmbeddingModel, findEmbeddingModel } from '../infra/embedding-model.ts';
import { databaseUrl, ensureDatabaseServer, openDatabase, usesEmbedded } from '../infra/postgres.ts';
import { alive, forgetPid, logFile, portOpen, recordedPid, runDir, startDetached, stopService, waitFor } from '../infra/processes.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { connectTemporal, ensureTemporal, registerSearchAttributes, temporalClient, temporalEndpoint } from '../infra/temporal.ts';
import { findTemporalCli } from '../infra/temporal-cli.ts';
import { localModelDir } from '../services/config.ts';
import { createKillSwitch } from '../services/control/kill-switch.ts';
import { connect, ping, redact } from '../services/db.ts';
import { llmEndpoint } from '../services/llm/endpoint.ts';
import { withSession } from './context.ts';
import {
  checkControlWorker,
  ensureControlContainer,
  removeDrainedVersions,
  serveUnversioned,
  stopControlContainers,
} from './control-worker.ts';
import { checkDashboard, ensureDashboardServer } from './dashboard.ts';
import { ensureListeningService } from './listening-service.ts';
import { ensureMcpToken, mcpHttpUrl, mcpToken } from './mcp-calls.ts';
import { reconcileQuietly } from './reconcile.ts';
import { ensureCurationSchedule } from './schedule.ts';

/**
 * The whole local stack: what `forge up` starts, `forge down` stops and `forge doctor` checks.
 */
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * The bundled scenarios, in the order the scripted model tries them: the forge and tool cases first,
 * demo.json last (its catch-all answers any task turn). FORGE_SCENARIO (comma-separated) replaces them.
 */
export function scenarioFiles(cfg: Pick<ForgeConfig, 'FORGE_SCENARIO'>): string[] {
  if (cfg.FORGE_SCENARIO) return cfg.FORGE_SCENARIO.split(',').map((f) => path.resolve(f.trim()));
  const dir = path.join(root, 'scenarios');
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'demo.json')
    .sort();
  return [...files, 'demo.json'].map((f) => path.join(dir, f));
}

type Step = (msg: string) => void;

/** The MCP endpoint forge up started: where it answers and where its bearer token comes from. */
export interface McpEndpoint {
  url: string;
  /** FORGE_MCP_TOKEN, or the file forge up generated it into */
  token: string;
}

export async function bringUp(cfg: ForgeConfig, step: Step): Promise<{ uiUrl: string | null; scripted: boolean; mcp: McpEndpoint | null }> {
  fs.mkdirSync(cfg.home, { recursive: true });
  step('docker: checking the engine');
  const dockerState = await ensureDockerEngine(cfg);
  if (dockerState.started) step('docker: started dockerd');
  step('sandbox image: checking');
  const image = await ensureSandboxImage(dockerClient(cfg), { tag: cfg.FORGE_SANDBOX_IMAGE });
  step(`sandbox image: ${image.tag} ${image.built ? 'built' : 'present'}`);
  if (cfg.FORGE_EMBEDDINGS_URL === 'local') {
    // Meaning sharpens discovery; Forge runs without it (words only), so a model it cannot fetch is said, not fatal.
    try {
      const model = await ensureEmbeddingModel(cfg);
      step(`embedding model: all-MiniLM-L6-v2 ${model.fetched ? 'fetched into' : 'present in'} ${model.dir}`);
    } catch (err) {
      const fix = err instanceof ForgeError && err.fix ? ` (fix: ${err.fix})` : '';
      step(`embedding model: ${describeError(err)}; discovery searches by words only until it is there${fix}`);
    }
  }

  const db = await ensureDatabaseServer(cfg);
  step(`postgres: ${usesEmbedded(cfg) ? `embedded PGlite ${db.started ? 'started' : 'running'}` : 'DATABASE_URL'} at ${redact(db.url)}`);
  const sql = await openDatabase(cfg, { max: 1 });
  await sql.end();
  step('postgres: migrations applied');

  const temporal = await ensureTemporal(cfg);
  step(
    `temporal: ${temporal.managed ? `dev server ${temporal.started ? 'started' : 'running'}` : 'TEMPORAL_ADDRESS'} at ${temporal.address}`,
  );
  if (!temporal.managed) {
    // Forge's dev server gets them on its command line; another cluster gets them registered here.
    const connection = await connectTemporal(cfg);
    try {
      await registerSearchAttributes(connection, cfg.TEMPORAL_NAMESPACE);
      step('temporal: search attributes ForgeCycleKind, ForgeToolName registered');
    } catch (err) {
      step(
        `temporal: could not register search attributes (${describeError(err)}); ask the cluster's operator to add ForgeCycleKind and ForgeToolName as Keyword`,
      );
    } finally {
      await connection.close();
    }
  }

  const llm = llmEndpoint(cfg);
  if (llm.scripted && !cfg.ANTHROPIC_BASE_URL) {
    await ensureScriptedModel(cfg);
    step(
      `llm: no ANTHROPIC_API_KEY, so Forge answers with the scripted model (${cfg.FORGE_SCENARIO ?? 'bundled scenarios'}) at ${llm.baseURL}`,
    );
  } else {
    step(`llm: ${llm.scripted ? 'scripted model' : 'Anthropic API'} at ${llm.baseURL ?? 'api.anthropic.com'}`);
  }

  // The control worker runs in a container by default (issue 12): a version of its worker deployment,
  // swapped by self-evolution; the host process serves the sandbox queue, where the Docker engine is.
  const inContainer = cfg.FORGE_CONTROL_WORKER === 'container';
  const worker = await ensureWorker(cfg, inContainer ? 'sandbox' : 'all');
  if (worker.crashedPid)
    step(`worker: the worker Forge started (pid ${worker.crashedPid}) had crashed or been killed; started a new one (pid ${worker.pid})`);
  if (inContainer) {
    step(`worker: polling ${cfg.FORGE_SANDBOX_QUEUE} (host process)`);
    const control = await ensureControlContainer(cfg, step);
    step(
      `control worker: version ${control.buildId} ${control.action} (container ${control.container}, ${control.image}), current; polling ${cfg.FORGE_TASK_QUEUE}`,
    );
    if (control.evolvedOver)
      step(
        `control worker: this tree changed, but the current version ${control.evolvedOver} is an evolved harness a person consented to, so it stays (forge evolve history)`,
      );
    const removed = await removeDrainedVersions(cfg);
    if (removed.length) step(`control worker: removed the drained version(s) ${removed.join(', ')}`);
  } else {
    const reset = await serveUnversioned(cfg);
    step(
      `worker: polling ${cfg.FORGE_TASK_QUEUE} and ${cfg.FORGE_SANDBOX_QUEUE} (host process, FORGE_CONTROL_WORKER=host${reset ? `; version ${reset} is no longer current` : ''})`,
    );
  }
  // Self-evolution's nightly curation (issue 11), created or brought in line with the configuration; a paused one stays paused.
  const curation = await ensureCurationSchedule(cfg);
  step(
    `schedule: ${curation.scheduleId} ${curation.status} (cron "${cfg.FORGE_CURATION_CRON}" ${cfg.FORGE_CURATION_TZ}, up to ${cfg.FORGE_EVOLVE_MAX_BATCHES} evolve cycle(s) a night)`,
  );

  // Cycles ended from outside while nobody read their ledgers (a rollback that terminated workflows
  // pinned to the retired version, a `temporal workflow terminate`): recorded now.
  const ended = await withSession(cfg, (session) => reconcileQuietly(session));
  if (ended.length)
    step(
      `ledgers: recorded ${ended.length} row(s) of cycles ended from outside (${ended.map((e) => `${e.ledger} ${e.workflowId}: ${e.status}`).join(', ')})`,
    );

  let mcp: McpEndpoint | null = null;
  if (cfg.FORGE_MCP_HTTP) {
    const token = ensureMcpToken(cfg);
    if (token.created)
      step(`mcp: generated a bearer token into ${token.from} (readable by you only; set FORGE_MCP_TOKEN to choose your own)`);
    const server = await ensureMcpServer(cfg);
    if (server.crashedPid)
      step(`mcp: the MCP server Forge started (pid ${server.crashedPid}) had crashed or been killed; started a new one`);
    mcp = { url: mcpHttpUrl(cfg), token: token.from };
    step(`mcp: ${mcp.url} (Streamable HTTP; bearer token: ${token.from}); on stdio: forge mcp`);
  } else {
    step('mcp: HTTP endpoint off (FORGE_MCP_HTTP=0); on stdio: forge mcp');
  }
  if (cfg.FORGE_DASHBOARD) {
    const dashboard = await ensureDashboardServer(cfg);
    step(`dashboard: ${dashboard.url}${dashboard.crashedPid ? ` (pid ${dashboard.crashedPid} had crashed; started a new one)` : ''}`);
  }
  return { uiUrl: temporal.uiUrl, scripted: llm.scripted, mcp };
}

const mcpHostForProbe = (cfg: ForgeConfig) => (['0.0.0.0', '::'].includes(cfg.FORGE_MCP_HOST) ? '127.0.0.1' : cfg.FORGE_MCP_HOST);

/**
 * The MCP HTTP endpoint as a background process with a pid file, like the worker: a pid file
 * naming a dead process is a crashed server, started again at once; a port held by something else
 * is a clear error rather than a second server that cannot bind.
 */
async function ensureMcpServer(cfg: ForgeConfig): Promise<{ pid: number; crashedPid?: number }> {
  return ensureListeningService(cfg, {
    name: 'mcp',
    what: 'the MCP endpoint',
    args: ['mcp', '--http'],
    port: cfg.FORGE_MCP_PORT,
    probeHost: mcpHostForProbe(cfg),
    host: cfg.FORGE_MCP_HOST,
    portTaken: { code: 'MCP_PORT_TAKEN', fix: 'set FORGE_MCP_PORT to a free port (or FORGE_MCP_HTTP=0 to go without the HTTP endpoint)' },
  });
}

async function ensureScriptedModel(cfg: ForgeConfig): Promise<void> {
  if (await portOpen(cfg.FORGE_SCRIPTED_MODEL_PORT)) return;
  startDetached(cfg.home, {
    name: 'scripted-model',
    command: process.execPath,
    args: [
      '--import',
      'tsx',
      path.join(root, 'scripted-model', 'server.ts'),
      '--port',
      String(cfg.FORGE_SCRIPTED_MODEL_PORT),
      ...scenarioFiles(cfg),
    ],
    cwd: root,
  });
  await waitFor('scripted model server', () => portOpen(cfg.FORGE_SCRIPTED_MODEL_PORT), 30_000, logFile(cfg.home, 'scripted-model'));
}

/**
 * Temporal keeps listing a dead worker's pollers for minutes, so they do not prove a worker runs:
 * when the pid file names a process that is gone, the worker Forge started has crashed, whatever
 * the poller list says, and a new one is started at once.
 */
async function ensureWorker(cfg: ForgeConfig, role: 'all' | 'sandbox'): Promise<{ pid?: number; crashedPid?: number }> {
  const recorded = recordedPid(cfg.home, 'worker');
  const crashedPid = recorded && !recorded.running ? recorded.pid : undefined;
  const client = await temporalClient(cfg);
  try {
    if (!crashedPid && (await workerPolling(client, cfg, role))) return { pid: recorded?.pid };
    if (crashedPid) forgetPid(cfg.home, 'worker');
    const pid = recorded?.running
      ? recorded.pid
      : startDetached(cfg.home, {
          name: 'worker',
          command: process.execPath,
          args: ['--import', 'tsx', path.join(root, 'workers', 'main.ts')],
          cwd: root,
          env: { ...process.env, FORGE_HOME: cfg.home, FORGE_WORKER_ROLE: role },
        });
    const log = logFile(cfg.home, 'worker');
    await waitFor(
      'Forge worker',
      async () => {
        if (!alive(pid)) throw new Error(`the Forge worker (pid ${pid}) exited while starting; see ${log}`);
        // Its own pollers: the dead worker's may still be listed.
        return workerPolling(client, cfg, role, pid);
      },
      120_000,
      log,
    );
    return { pid, crashedPid };
  } finally {
    await client.connection.close();
  }
}

/** Whether the queues of a role have a poller (of the worker with this pid, when given). */
async function workerPolling(client: Client, cfg: ForgeConfig, role: 'all' | 'sandbox', pid?: number): Promise<boolean> {
  const sandbox = await hasPollers(client, cfg.FORGE_SANDBOX_QUEUE, 'activity', pid);
  return role === 'sandbox' ? sandbox : sandbox && (await hasPollers(client, cfg.FORGE_TASK_QUEUE, 'workflow', pid));
}

/**
 * Whether a queue has pollers of that kind: the control queue's workflow pollers, the sandbox
 * queue's activity pollers (whatever the queues are named). pid: count only that process's pollers
 * (a Temporal worker's identity is `<pid>@<host>` by default).
 */
export async function hasPollers(client: Client, taskQueue: string, kind: 'workflow' | 'activity', pid?: number): Promise<boolean> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: kind === 'activity' ? 2 : 1, // 1 = workflow, 2 = activity
  });
  const pollers = res.pollers ?? [];
  return pid === undefined ? pollers.length > 0 : pollers.some((p) => p.identity?.startsWith(`${pid}@`));
}

export async function bringDown(cfg: ForgeConfig): Promise<string[]> {
  const stopped: string[] = [];
  // The control worker's containers first: they stop polling before Temporal and Postgres go.
  if (await dockerAnswers(dockerClient(cfg))) stopped.push(...(await stopControlContainers(cfg)).map((name) => `control worker ${name}`));
  for (const name of ['dashboard', 'mcp', 'worker', 'scripted-model', 'temporal', 'pglite']) {
    if (await stopService(cfg.home, name, name === 'worker' ? 15_000 : 5_000)) stopped.push(name);
  }
  return stopped;
}

async function sandboxImagePresent(docker: ReturnType<typeof dockerClient>, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/**
 * The worker's line: a pid file naming a dead process is a crashed worker even while Temporal
 * still lists its pollers (it does for minutes). polling is undefined when Temporal did not answer.
 */
function checkWorker(cfg: ForgeConfig, worker: ReturnType<typeof recordedPid>, polling: boolean | undefined): Check | undefined {
  if (worker && !worker.running) {
    return {
      component: 'worker',
      ok: false,
      detail: `down: the worker Forge started (pid ${worker.pid}, in ${path.join(runDir(cfg.home), 'worker.pid')}) is not running; it crashed or was killed${polling ? ' (Temporal still lists its pollers for a few minutes)' : ''}`,
      fix: `forge up (restarts it; its log: ${logFile(cfg.home, 'worker')})`,
    };
  }
  if (polling === undefined) return undefined;
  return {
    component: 'worker',
    ok: polling,
    detail: polling ? `polling ${cfg.FORGE_TASK_QUEUE}, ${cfg.FORGE_SANDBOX_QUEUE}` : 'no worker polls the Forge task queues',
    fix: polling ? undefined : 'forge up (or: forge worker)',
  };
}

/** The MCP endpoint's line: its process (a pid file naming a dead one is a crash), its port and its token. */
async function checkMcp(cfg: ForgeConfig): Promise<Check> {
  const recorded = recordedPid(cfg.home, 'mcp');
  const url = mcpHttpUrl(cfg);
  const fix = `forge up (restarts it; its log: ${logFile(cfg.home, 'mcp')})`;
  if (recorded && !recorded.running)
    return {
      component: 'mcp',
      ok: false,
      detail: `down: the MCP server Forge started (pid ${recorded.pid}) is not running; it crashed or was killed`,
      fix,
    };
  const listening = await portOpen(cfg.FORGE_MCP_PORT, mcpHostForProbe(cfg));
  if (!listening) return { component: 'mcp', ok: false, detail: `nothing answers at ${url}`, fix: 'forge up (or: forge mcp --http)' };
  const token = mcpToken(cfg);
  if (!token)
    return {
      component: 'mcp',
      ok: false,
      detail: `${url} answers, but no bearer token is set`,
      fix: 'forge up (generates one), or set FORGE_MCP_TOKEN',
    };
  return { component: 'mcp', ok: true, detail: `${url}${recorded ? ` (pid ${recorded.pid})` : ''}, bearer token: ${token.from}` };
}

/** The scripted model's line, as the MCP endpoint's: its process (a pid file naming a dead one is a crash) and its port. */
async function checkScriptedModel(cfg: ForgeConfig, baseURL: string): Promise<Check> {
  const recorded = recordedPid(cfg.home, 'scripted-model');
  const fix = `forge up (restarts it; its log: ${logFile(cfg.home, 'scripted-model')}), or set ANTHROPIC_API_KEY`;
  if (recorded && !recorded.running)
    return {
      component: 'llm',
      ok: false,
      detail: `down: the scripted model Forge started (pid ${recorded.pid}) is not running; it crashed or was killed`,
      fix,
    };
  const up = await portOpen(Number(new URL(baseURL).port));
  return {
    component: 'llm',
    ok: up,
    detail: `no ANTHROPIC_API_KEY: scripted model at ${baseURL}${recorded ? ` (pid ${recorded.pid})` : ''} ${up ? 'answers' : 'is not running'}`,
    ...(up ? {} : { fix }),
  };
}

export interface Check {
  component: string;
  ok: boolean;
  /** ok, but a state a person should know of (Forge frozen): no fault, so it fails nothing */
  notice?: boolean;
  detail: string;
  fix?: string;
}

export async function checkStack(cfg: ForgeConfig): Promise<Check[]> {
  const checks: Check[] = [{ component: 'config', ok: true, detail: `FORGE_HOME=${cfg.home}` }];
  const docker = dockerClient(cfg);
  const dockerUp = await dockerAnswers(docker);
  checks.push(
    dockerUp
      ? { component: 'docker', ok: true, detail: `engine answers${cfg.DOCKER_HOST ? ` at ${cfg.DOCKER_HOST}` : ''}` }
      : { component: 'docker', ok: false, detail: 'no engine answers', fix: 'forge up (starts dockerd as root), or start Docker yourself' },
  );
  // A component whose check needs one that is down is still listed: not checked, and why.
  const unchecked = (component: string, needs: string): Check => ({
    component,
    ok: false,
    detail: `not checked: ${needs} is down`,
    fix: 'forge up',
  });
  if (!dockerUp) checks.push(unchecked('sandbox image', 'the Docker engine'));
  if (dockerUp) {
    const present = await sandboxImagePresent(docker, cfg.FORGE_SANDBOX_IMAGE);
    checks.push({
      component: 'sandbox image',
      ok: present,
      detail: present ? cfg.FORGE_SANDBOX_IMAGE : `${cfg.FORGE_SANDBOX_IMAGE} missing`,
      fix: present ? undefined : 'forge up (builds it locally)',
    });
  }
  const url = databaseUrl(cfg);
  try {
    const sql = connect(url, { max: 1 });
    try {
      await ping(sql, url);
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from schema_migrations`;
      checks.push({
        component: 'postgres',
        ok: true,
        detail: `${usesEmbedded(cfg) ? 'embedded PGlite' : 'DATABASE_URL'} ${redact(url)}, ${row?.n ?? 0} migrations`,
      });
      const state = await createKillSwitch(sql).state();
      // Frozen is a state a person chose, not a fault: reported as a notice, not failed (doctor's exit stays 0).
      checks.push({
        component: 'kill switch',
        ok: true,
        ...(state.frozen ? { notice: true } : {}),
        detail: state.frozen
          ? `FROZEN by ${state.by ?? '?'} since ${state.since ?? '?'}${state.reason ? ` (${state.reason})` : ''}: side effects refused, so tasks and forges wait (a state a person chose, not a fault); resume with: forge thaw`
          : 'off',
      });
    } finally {
      await sql.end({ timeout: 1 });
    }
  } catch (err) {
    checks.push({
      component: 'postgres',
      ok: false,
      detail: describeError(err),
      fix: usesEmbedded(cfg) ? 'forge up (starts the embedded database)' : 'check DATABASE_URL and that the server runs',
    });
    checks.push(unchecked('kill switch', 'Postgres'));
  }
  const endpoint = temporalEndpoint(cfg);
  if (endpoint.managed) {
    const cli = findTemporalCli(cfg);
    checks.push(
      cli
        ? { component: 'temporal cli', ok: true, detail: cli }
        : {
            component: 'temporal cli',
            ok: false,
            detail: 'not found',
            fix: 'forge up (downloads it, or builds it with go install), or set TEMPORAL_CLI_PATH',
          },
    );
  }
  if (cfg.FORGE_EMBEDDINGS_URL === 'local') {
    const model = await findEmbeddingModel(cfg);
    checks.push(
      model
        ? { component: 'embedding model', ok: true, detail: `all-MiniLM-L6-v2 in ${model}` }
        : {
            component: 'embedding model',
            ok: false,
            detail: `not in ${localModelDir(cfg)}: discovery searches by words only`,
            fix: 'forge up (fetches it from Maven Central, pinned by sha256), or set FORGE_EMBEDDINGS_URL=off',
          },
    );
  }
  const worker = recordedPid(cfg.home, 'worker');
  let polling: boolean | undefined;
  try {
    const client = await temporalClient(cfg);
    try {
      await client.workflowService.getSystemInfo({});
      checks.push({
        component: 'temporal',
        ok: true,
        detail: `${endpoint.address} namespace ${cfg.TEMPORAL_NAMESPACE}${endpoint.uiUrl ? `, UI ${endpoint.uiUrl}` : ''}`,
      });
      polling = await workerPolling(client, cfg, cfg.FORGE_CONTROL_WORKER === 'container' ? 'sandbox' : 'all');
    } finally {
      await client.connection.close();
    }
  } catch (err) {
    checks.push({
      component: 'temporal',
      ok: false,
      detail: describeError(err),
      fix: endpoint.managed ? 'forge up' : 'check TEMPORAL_ADDRESS',
    });
  }
  checks.push(checkWorker(cfg, worker, polling) ?? unchecked('worker', 'Temporal'));
  if (cfg.FORGE_CONTROL_WORKER === 'container')
    checks.push(polling !== undefined ? await checkControlWorker(cfg) : unchecked('control worker', 'Temporal'));
  if (cfg.FORGE_MCP_HTTP) checks.push(await checkMcp(cfg));
  if (cfg.FORGE_DASHBOARD) checks.push(await checkDashboard(cfg));
  const llm = llmEndpoint(cfg);
  if (llm.scripted) {
    checks.push(await checkScriptedModel(cfg, llm.baseURL!));
  } else {
    checks.push({ component: 'llm', ok: true, detail: `Anthropic API key set; model ${cfg.FORGE_MODEL}` });
  }
  return checks;
}
