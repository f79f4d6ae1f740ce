import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { z } from 'zod';
import { type AgentLimits, agentLimitsSchema } from '../../domain/agent.ts';
import type { ForgeConfig } from '../../domain/config.ts';
import { describeError, PermanentError } from '../../domain/errors.ts';
import { EvidenceNotFoundError, type Expectation, expectationSchema, judgeReplay } from '../../domain/evidence.ts';
import { REPLAY_POLICY, type ReplayCaseResult, type ReplayReport, type replayRequestSchema } from '../../domain/evolve.ts';
import type { TaskResult } from '../../domain/task.ts';
import { toolManifestSchema, toolNameSchema } from '../../domain/tool.ts';
import { modelsDir } from '../config.ts';
import { pendingApprovals } from '../control/approvals.ts';
import { connect, type Sql } from '../db.ts';
import { type Logger, log as rootLog } from '../log.ts';
import { LABEL_DEPLOYMENT, LABEL_OWNER, LABEL_SANDBOX, OWNER, sandboxDeployment } from '../sandbox/container.ts';
import { containerLog, containerState, lastLines, removeContainer } from './containers.ts';
import { LABEL_TREE, LABEL_WORKER, modelsMount, WORKER_TMPFS, WORKER_UID } from './image.ts';

/**
 * Replay verification of a candidate harness (issue 11, item 5). The candidate's worker image runs as
 * a throwaway control worker on task queues of its own, against a scratch copy of the catalog: a
 * database made for this replay (on production's server under a role of its own, or, where that
 * server holds one database, as the embedded PGlite does, an embedded server of its own; migrated,
 * the catalog rows copied, nothing else) and a copy of the tools folder. Its sandbox jobs go to a
 * worker in this process over that copy, where a write tool's call is never run: a held-out task's
 * write is answered with the output its production run had for the same call, any other is a dry
 * run. It replays the failure batch (each case several times, to
 * expose flakiness) and a held-out set of past tasks that completed in production, staged: a sample
 * of the batch first, the rest only if the sample passes. Everything is judged here, by
 * domain/evidence.ts judgeReplay — never inside the candidate. Production rows are only read.
 * Whatever happens, the container, the in-process worker, the scratch database and folders go.
 */

/** What the replay needs of Temporal, implemented by the activity (services know nothing of Temporal). */
export interface ReplayTemporal {
  /**
   * A worker in this process for the candidate's sandbox queue, over the scratch tools folder. A write
   * is never run: answered with the output production's run of that case had for the same call
   * (`recorded`, by the replayed workflow's id), else as a dry run (replayDryRun).
   */
  startSandboxWorker(opts: {
    taskQueue: string;
    toolsDir: string;
    recorded: ReadonlyMap<string, readonly RecordedCall[]>;
  }): Promise<{ shutdown(): Promise<void> }>;
  /**
   * starts a task workflow on the candidate's queue and waits for its end: its result, or why there
   * is none. With the bounds and the session the replayed task had in production.
   */
  runTask(opts: {
    workflowId: string;
    taskQueue: string;
    sandboxQueue: string;
    task: string;
    limits?: AgentLimits;
    sessionId?: string;
    timeoutMs: number;
  }): Promise<{ result?: TaskResult; error?: string }>;
  /** the update `forge approve|reject` sends (workflows/definitions.ts decideApprovalUpdate) */
  decideApproval(opts: { workflowId: string; approvalId: string; approve: boolean }): Promise<void>;
  terminate(workflowId: string, reason: string): Promise<void>;
  /** ends workflows a crashed earlier attempt left running on this queue; how many */
  terminateLeftovers(taskQueue: string, reason: string): Promise<number>;
}

export interface ReplayDeps {
  /** production's database: evidence, past tasks and the catalog are read from it, never written */
  sql: Sql;
  /** production's database URL: the scratch database is made on the same server */
  databaseUrl: string;
  /** infra/migrate.ts, injected (services do not import infra) */
  migrate(sql: Sql): Promise<unknown>;
  docker: Docker;
  /** FORGE_HOME: scratch folders go under evolve/<candidate>/replay */
  home: string;
  /** production's tools folder, copied */
  toolsDir: string;
  /** what the candidate's worker needs besides its database, queues and home: Temporal and the model (candidateWorkerEnv) */
  workerEnv: Record<string, string>;
  temporal: ReplayTemporal;
  /**
   * An embedded database server for the scratch catalog, when production's cannot hold one apart
   * (the embedded PGlite serves one database): infra/pglite-server.ts on a free port, injected.
   */
  scratchServer?: () => Promise<{ url: string; stop(): Promise<void> }>;
  /** production's kill switch: a freeze stops the replay (and the cycle waits for thaw) */
  killSwitch: { guard(what: string): Promise<void> };
  log?: Logger;
  limits?: Partial<ReplayLimits>;
}

export interface ReplayLimits {
  /** case runs at once */
  concurrency: number;
  /** one replayed task's bound (its workflow execution timeout) */
  taskTimeoutMs: number;
  /** how long the candidate's worker may take to start (it bundles its workflow code first) */
  workerStartMs: number;
  pollMs: number;
}

/** How long the kill switch may answer from its cache (services/control/kill-switch.ts), and a little more. */
const KILL_SWITCH_CACHE_MS = 600;

export const REPLAY_LIMITS: ReplayLimits = { concurrency: 2, taskTimeoutMs: 10 * 60_000, workerStartMs: 180_000, pollMs: 400 };

/**
 * How the replay driver answers what a replayed task asks a person. Writes are dry runs, so they go
 * ahead (and a read the ranking wants confirmed, or a forge past the budget, which the scratch ledger
 * never reaches); a question or an escalation has nobody to answer it, so it is declined.
 */
export const REPLAY_DECISIONS: Readonly<Record<string, boolean>> = {
  write: true,
  destructive: true,
  confirm: true,
  budget: true,
  question: false,
  escalation: false,
};

/** Tables copied into the scratch database: the catalog, with the metering its trust levels and ranking read. */
const CATALOG_TABLES = ['tools', 'tool_versions', 'tool_test_cases', 'tool_embeddings', 'invocations'] as const;

export type ReplayRequest = z.output<typeof replayRequestSchema>;

export interface ReplayHooks {
  signal?: AbortSignal;
  /** tells apart the workflows of attempts (the activity's attempt number) */
  runKey?: string;
  progress?(note: { stage: string; done?: number; total?: number }): void;
}

/** A call production's run of a replayed task made, with what the tool answered it. */
export interface RecordedCall {
  tool: string;
  input: unknown;
  output: unknown;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const normalised = (task: string) => task.replace(/\s+/g, ' ').trim().toLowerCase();

/** Every name a replay of this candidate uses: fixed per candidate, so a retried attempt clears what a crashed one left. */
export function replayNames(candidateId: string, home: string) {
  const key = sha(candidateId).slice(0, 12);
  return {
    database: `forge_replay_${key}`,
    container: `forge-replay-${key}`,
    dir: path.join(home, 'evolve', candidateId, 'replay'),
    controlQueue: `evolve-${candidateId}-control`,
    sandboxQueue: `evolve-${candidateId}-sandbox`,
  };
}

/** Labels on a candidate's replay container, so an operator (and a reaper) can tell what it is. */
export const LABEL_REPLAY = 'forge.replay';

/**
 * The environment a candidate's control worker gets from this worker's configuration: Temporal and
 * the model. Not the alert webhook (a scratch promotion must not page anyone), not TLS files (not
 * mounted), not the MCP server's settings.
 */
export function candidateWorkerEnv(cfg: ForgeConfig, temporalAddress: string): Record<string, string> {
  const env: Record<string, string | undefined> = {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: cfg.TEMPORAL_NAMESPACE,
    TEMPORAL_API_KEY: cfg.TEMPORAL_API_KEY,
    TEMPORAL_TLS: cfg.TEMPORAL_TLS === undefined ? undefined : cfg.TEMPORAL_TLS ? '1' : '0',
    ANTHROPIC_API_KEY: cfg.ANTHROPIC_API_KEY,
    ANTHROPIC_BASE_URL: cfg.ANTHROPIC_BASE_URL,
    FORGE_SCRIPTED_MODEL_PORT: String(cfg.FORGE_SCRIPTED_MODEL_PORT),
    FORGE_MODEL: cfg.FORGE_MODEL,
    FORGE_EMBEDDINGS_URL: cfg.FORGE_EMBEDDINGS_URL,
    FORGE_EMBEDDINGS_MODEL: cfg.FORGE_EMBEDDINGS_MODEL,
    FORGE_EMBEDDINGS_API_KEY: cfg.FORGE_EMBEDDINGS_API_KEY,
    // the host's folder, mounted read-only at the same path (image.ts modelsMount)
    FORGE_MODELS_DIR: modelsDir(cfg),
    FORGE_DAILY_FORGE_BUDGET: String(cfg.FORGE_DAILY_FORGE_BUDGET),
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * The production control worker's environment (a version's container, issue 12): the candidate's,
 * plus the production database, queues, log level and the deploy policy. The alert webhook goes too:
 * production promotions page someone.
 */
export function controlWorkerEnv(cfg: ForgeConfig, temporalAddress: string): Record<string, string> {
  const env: Record<string, string | undefined> = {
    ...candidateWorkerEnv(cfg, temporalAddress),
    DATABASE_URL: cfg.DATABASE_URL,
    FORGE_PGLITE_PORT: String(cfg.FORGE_PGLITE_PORT),
    FORGE_TASK_QUEUE: cfg.FORGE_TASK_QUEUE,
    FORGE_SANDBOX_QUEUE: cfg.FORGE_SANDBOX_QUEUE,
    FORGE_LOG_LEVEL: cfg.FORGE_LOG_LEVEL,
    FORGE_ALERT_WEBHOOK: cfg.FORGE_ALERT_WEBHOOK,
    FORGE_CONSENT_TIMEOUT_S: String(cfg.FORGE_CONSENT_TIMEOUT_S),
    FORGE_PROBE_WINDOW_S: String(cfg.FORGE_PROBE_WINDOW_S),
    FORGE_PROBE_INTERVAL_S: String(cfg.FORGE_PROBE_INTERVAL_S),
    FORGE_PROBE_PASSES: String(cfg.FORGE_PROBE_PASSES),
    FORGE_DEPLOYMENT: cfg.FORGE_DEPLOYMENT,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export class ReplayNeedsPostgresError extends PermanentError {
  constructor(url: string, got: string) {
    super(
      `the database server at ${url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@')} answered a connection to the scratch database with "${got}": it serves one database under any name (the embedded PGlite does), so a replay there would write production's`,
      'REPLAY_NEEDS_POSTGRES',
      'set DATABASE_URL to a Postgres server whose role may CREATE DATABASE; replay verification makes a scratch database per candidate there',
      { got },
    );
  }
}

export class CandidateImageMissingError extends PermanentError {
  constructor(image: string, why: string) {
    super(`cannot replay ${image}: ${why}`, 'CANDIDATE_IMAGE_MISSING', 'build the candidate image again (buildCandidateImage)', { image });
  }
}

const withDatabase = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

const withParam = (url: string, key: string, value: string) => {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
};

/** Cleanup steps, run last-added first; each step's failure is logged and the rest still run. */
function cleanupList(log: Logger) {
  const steps: { what: string; fn: () => Promise<unknown> }[] = [];
  return {
    add(what: string, fn: () => Promise<unknown>) {
      steps.unshift({ what, fn });
    },
    async run(): Promise<string[]> {
      const failed: string[] = [];
      for (const s of steps.splice(0)) {
        try {
          await s.fn();
        } catch (err) {
          failed.push(s.what);
          log.error('replay cleanup step failed', { step: s.what, error: describeError(err) });
        }
      }
      return failed;
    },
  };
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** The scratch database and the role of the same name that owns what is in it. */
async function dropScratch(sql: Sql, name: string): Promise<void> {
  await sql.unsafe(`drop database if exists ${quoteIdent(name)} with (force)`);
  await sql.unsafe(`drop role if exists ${quoteIdent(name)}`);
}

/**
 * The replay's database, never production's. On production's server when it keeps databases apart
 * and lets this worker create one; otherwise (the embedded PGlite answers any database name with its
 * one database, production's; or CREATE DATABASE is refused) an embedded server of the replay's own.
 * The URL is what the candidate gets; `database` is the name a connection to it must report.
 */
async function openScratchDatabase(
  deps: Pick<ReplayDeps, 'sql' | 'databaseUrl' | 'scratchServer'>,
  name: string,
  log: Logger,
  cleanup: ReturnType<typeof cleanupList>,
): Promise<{ url: string; database: string }> {
  let refused: string;
  try {
    await deps.sql.unsafe(`create database ${quoteIdent(name)}`);
    cleanup.add('drop the scratch database and its role', () => dropScratch(deps.sql, name));
    const url = withDatabase(deps.databaseUrl, name);
    const owner = connect(url, { max: 1 });
    try {
      const [where] = await owner<{ db: string }[]>`select current_database() as db`;
      if (where?.db === name) return { url: await scopedAccess(deps, owner, name, url, log), database: name };
      refused = `a connection to ${name} reached "${where?.db ?? '(nothing)'}"`;
    } finally {
      await owner.end({ timeout: 2 });
    }
    await dropScratch(deps.sql, name);
  } catch (err) {
    refused = describeError(err);
  }
  if (!deps.scratchServer) throw new ReplayNeedsPostgresError(deps.databaseUrl, refused);
  log.info("the replay's catalog gets an embedded database server of its own", { why: refused });
  const server = await deps.scratchServer();
  cleanup.add('stop the scratch database server', () => server.stop());
  return { url: server.url, database: new URL(server.url).pathname.slice(1) };
}

/**
 * When this worker's role may create roles, a role of the scratch database's name with a random
 * password and rights on that database alone: the candidate shares the host's loopback, and with it
 * the server, but not production's credentials, so it cannot read or write production's tables.
 * Without CREATEROLE the candidate gets this worker's credentials (logged).
 */
async function scopedAccess(deps: Pick<ReplayDeps, 'sql'>, owner: Sql, name: string, url: string, log: Logger): Promise<string> {
  const password = randomBytes(18).toString('hex');
  try {
    await deps.sql.unsafe(`create role ${quoteIdent(name)} login password '${password}' nosuperuser nocreatedb nocreaterole noinherit`);
  } catch (err) {
    log.warn("the candidate uses this worker's database role: it may not create a scratch role", { error: describeError(err) });
    return url;
  }
  await deps.sql.unsafe(`grant all on database ${quoteIdent(name)} to ${quoteIdent(name)}`);
  await owner.unsafe(`grant all on schema public to ${quoteIdent(name)}`);
  const scoped = new URL(url);
  scoped.username = name;
  scoped.password = password;
  return scoped.toString();
}

/** The columns an insert can write (not generated), in order. */
async function writableColumns(sql: Sql, table: string): Promise<string[]> {
  const rows = await sql<{ column_name: string }[]>`
    select column_name from information_schema.columns
    where table_schema = current_schema() and table_name = ${table} and is_generated = 'NEVER'
    order by ordinal_position`;
  return rows.map((r) => r.column_name);
}

/** Rows per insert while copying the catalog. */
const COPY_CHUNK = 500;

/**
 * The catalog as one consistent snapshot of production (repeatable read, read only), row by row as
 * JSON, which Postgres turns back into each column's type (jsonb, arrays, times) on the scratch side:
 * the same path on a Postgres server and on PGlite, whose wire server has no COPY. Version folders
 * then point into the scratch tools folder, so nothing the candidate does can write production's.
 */
async function copyCatalog(prod: Sql, scratch: Sql, scratchTools: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await prod.begin('isolation level repeatable read read only', async (tx) => {
    for (const table of CATALOG_TABLES) {
      const have = new Set(await writableColumns(tx as unknown as Sql, table));
      const cols = (await writableColumns(scratch, table)).filter((c) => have.has(c));
      if (!cols.length) continue;
      const list = cols.map(quoteIdent).join(', ');
      const rows = await tx.unsafe<{ j: string }[]>(`select row_to_json(x)::text as j from (select ${list} from ${table}) x`);
      for (let i = 0; i < rows.length; i += COPY_CHUNK) {
        const chunk = `[${rows
          .slice(i, i + COPY_CHUNK)
          .map((r) => r.j)
          .join(',')}]`;
        await scratch.unsafe(`insert into ${table} (${list}) select ${list} from json_populate_recordset(null::${table}, $1::text::json)`, [
          chunk,
        ]);
      }
      counts[table] = rows.length;
    }
  });
  await scratch`update tool_versions set dir = ${scratchTools} || '/' || name || '/v' || version`;
  await scratch`select setval(pg_get_serial_sequence('invocations', 'id'), coalesce((select max(id) from invocations), 0) + 1, false)`;
  return counts;
}

/** The registered tools' folders (tool names only: no scratch space, trash or rejected edits). */
async function copyTools(from: string, to: string): Promise<number> {
  await fs.mkdir(to, { recursive: true });
  let n = 0;
  for (const e of await fs.readdir(from, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory() || !toolNameSchema.safeParse(e.name).success) continue;
    await fs.cp(path.join(from, e.name), path.join(to, e.name), { recursive: true, verbatimSymlinks: true });
    n++;
  }
  return n;
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.lchown(dir, uid, gid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await fs.lchown(p, uid, gid);
  }
}

interface CaseSpec {
  case: string;
  kind: 'batch' | 'held-out';
  task: string;
  run: number;
  expectations: Expectation[];
  workflowId: string;
  /** why it cannot be replayed at all (an evidence row without a task) */
  unplayable?: string;
  /** a held-out task's calls in production, in order: its writes are answered from them */
  recorded?: RecordedCall[];
  /** the bounds the task ran under in production (evidence recorded before they were kept has none: the defaults) */
  limits?: AgentLimits;
  /** the session the task continued in production: its earlier exchanges, given to the replay (seedSession) */
  session?: EarlierExchanges;
}

/** A session as a task in it saw it: the session, the task's place, and every exchange before that place. */
interface EarlierExchanges {
  id: string;
  title: string;
  position: number;
  earlier: {
    position: number;
    workflow_id: string;
    task: string;
    status: string;
    result: unknown;
    error: string | null;
    created_at: Date;
    updated_at: Date;
    joined_at: Date;
  }[];
}

export async function replayCandidate(deps: ReplayDeps, req: ReplayRequest, hooks: ReplayHooks = {}): Promise<ReplayReport> {
  const started = Date.now();
  const log = (deps.log ?? rootLog).child({ candidate: req.candidateId });
  const limits = { ...REPLAY_LIMITS, ...deps.limits };
  const names = replayNames(req.candidateId, deps.home);
  const runKey = hooks.runKey ?? sha(`${Date.now()}:${Math.random()}`).slice(0, 6);
  const note = (stage: string, done?: number, total?: number) => hooks.progress?.({ stage, done, total });
  const cleanup = cleanupList(log);
  const { docker, temporal } = deps;
  /** set when the replay must stop: cancelled, or frozen */
  let stopped: unknown;
  const checkStopped = () => {
    if (hooks.signal?.aborted && !stopped) stopped = hooks.signal.reason ?? new Error('the replay was cancelled');
    if (stopped) throw stopped;
  };

  try {
    await deps.killSwitch.guard('replaying a candidate');
    // What a crashed attempt of this candidate may have left: its container, database and folders.
    note('clearing leftovers');
    await removeContainer(docker, names.container);
    await dropScratch(deps.sql, names.database);
    await fs.rm(names.dir, { recursive: true, force: true });
    const leftovers = await temporal.terminateLeftovers(names.controlQueue, 'a new replay attempt of this candidate started');
    if (leftovers) log.warn('terminated replay workflows an earlier attempt left running', { count: leftovers });

    const image = await docker
      .getImage(req.image)
      .inspect()
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode === 404) throw new CandidateImageMissingError(req.image, 'no such image on this Docker host');
        throw err;
      });
    if (image.Config?.Labels?.[LABEL_WORKER] !== '1') throw new CandidateImageMissingError(req.image, 'it is not a Forge worker image');

    // ---- the cases: the batch from its evidence, the held-out set from production's finished tasks
    note('choosing cases');
    const rows = await deps.sql<
      {
        id: string;
        task: string | null;
        expectations: unknown;
        status: string | null;
        limits: unknown;
        trace_session: string | null;
        session_id: string | null;
        position: number | null;
      }[]
    >`
      select e.id, e.trace->>'task' as task, e.expectations, e.trace->>'status' as status, e.trace->'limits' as limits,
             e.trace->>'sessionId' as trace_session, st.session_id, st.position
      from failure_evidence e left join session_tasks st on st.workflow_id = e.workflow_id
      where e.id = any(${req.evidenceIds})`;
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const missing = req.evidenceIds.filter((id) => !byId.has(id));
    if (missing.length) throw new EvidenceNotFoundError(missing);
    const sessions = new Map<number, EarlierExchanges>();
    for (const r of rows)
      if (r.session_id && r.position !== null) sessions.set(Number(r.id), await earlierExchanges(deps.sql, r.session_id, r.position));
    const batchTasks = new Set(rows.map((r) => normalised(r.task ?? '')));
    const heldOut = req.heldOut ? await heldOutTasks(deps.sql, batchTasks, req.heldOut) : [];
    const wf = (part: string) => `${req.candidateId}.replay-${runKey}.${part}`;
    const batchCases = (ids: readonly number[]): CaseSpec[] =>
      ids.flatMap((id) => {
        const row = byId.get(id)!;
        const expectations = expectationSchema.array().safeParse(row.expectations);
        const bounds = agentLimitsSchema.safeParse(row.limits);
        const session = sessions.get(id);
        const unplayable = !row.task?.trim()
          ? 'the evidence holds no task to replay'
          : !expectations.success || !expectations.data.length
            ? 'the evidence holds no expectation a replay can be judged by'
            : !bounds.success && row.status === 'stopped'
              ? 'a bound stopped the task, and the evidence does not say which bounds it ran under (it was recorded before Forge kept them): under the default bounds a replay would prove nothing'
              : row.trace_session && !session
                ? `the task continued session ${row.trace_session}, which no longer holds it: its earlier exchanges cannot be given to a replay, and without them it is another task`
                : undefined;
        return Array.from({ length: req.runsPerCase }, (_, i) => ({
          case: String(id),
          kind: 'batch' as const,
          task: row.task ?? '',
          run: i + 1,
          expectations: expectations.success ? expectations.data : [],
          workflowId: wf(`e${id}.r${i + 1}`),
          ...(bounds.success ? { limits: bounds.data } : {}),
          ...(session ? { session } : {}),
          ...(unplayable ? { unplayable } : {}),
        }));
      });
    const sampleIds = req.evidenceIds.slice(0, req.sample);
    const restIds = req.evidenceIds.slice(req.sample);
    const heldOutCases: CaseSpec[] = heldOut.map((t, i) => ({
      case: t.workflowId,
      kind: 'held-out',
      task: t.task,
      run: 1,
      expectations: [{ kind: 'completes' }],
      workflowId: wf(`h${i + 1}`),
      recorded: t.calls,
    }));
    // What a write of a held-out case is answered with: its own output in production, for the same call.
    const recorded = new Map(heldOutCases.map((c) => [c.workflowId, c.recorded ?? []]));

    // ---- the scratch catalog: a database of its own (on production's server, else an embedded one), and the tools folder
    note('making the scratch catalog');
    const home = path.join(names.dir, 'home');
    const tools = path.join(home, 'tools');
    await fs.mkdir(tools, { recursive: true });
    cleanup.add('remove the scratch folders', () => fs.rm(names.dir, { recursive: true, force: true }));
    const scratchDb = await openScratchDatabase(deps, names.database, log, cleanup);
    const scratchUrl = scratchDb.url;
    const scratch = connect(scratchUrl, { max: 3 });
    cleanup.add('close the scratch connections', () => scratch.end({ timeout: 2 }));
    const [where] = await scratch<{ db: string }[]>`select current_database() as db`;
    if (where?.db !== scratchDb.database) throw new ReplayNeedsPostgresError(deps.databaseUrl, where?.db ?? '(nothing)');
    await deps.migrate(scratch);
    const copied = await copyCatalog(deps.sql, scratch, tools);
    const toolFolders = await copyTools(deps.toolsDir, tools);
    const uid = process.getuid?.() ?? WORKER_UID;
    const gid = process.getgid?.() ?? WORKER_UID;
    // The candidate runs unprivileged: as the image's user when this worker is root (which then hands it the folder), else as this user.
    const user = uid === 0 ? { uid: WORKER_UID, gid: WORKER_UID } : { uid, gid };
    if (uid === 0) await chownTree(home, WORKER_UID, WORKER_UID);
    log.info('replay catalog ready', { database: names.database, copied, toolFolders, ms: Date.now() - started });
    checkStopped();

    // ---- the workers: the candidate's control worker in a container, its sandbox worker here
    note('starting the candidate worker');
    const sandboxWorker = await temporal.startSandboxWorker({ taskQueue: names.sandboxQueue, toolsDir: tools, recorded });
    cleanup.add('shut down the in-process sandbox worker', () => sandboxWorker.shutdown());
    const container = await docker.createContainer({
      name: names.container,
      Image: image.Id,
      User: `${user.uid}:${user.gid}`,
      Env: Object.entries({
        ...deps.workerEnv,
        // Named, so the server's sessions tell the candidate's connections apart.
        DATABASE_URL: withParam(scratchUrl, 'application_name', names.container),
        FORGE_TASK_QUEUE: names.controlQueue,
        FORGE_SANDBOX_QUEUE: names.sandboxQueue,
        FORGE_WORKER_ROLE: 'control',
        FORGE_HOME: home,
        FORGE_WATCH_TOOLS: '0',
        FORGE_LOG_LEVEL: 'info',
        HOME: '/tmp',
      }).map(([k, v]) => `${k}=${v}`),
      // A sandbox container of this process as well: `forge freeze` kills it, and a worker that starts
      // after this one died reaps it (services/sandbox/docker.ts reapOrphans).
      Labels: {
        [LABEL_REPLAY]: req.candidateId,
        [LABEL_TREE]: image.Config?.Labels?.[LABEL_TREE] ?? '',
        [LABEL_SANDBOX]: '1',
        [LABEL_OWNER]: OWNER,
        [LABEL_DEPLOYMENT]: sandboxDeployment(),
      },
      HostConfig: {
        // Loopback reaches Temporal, Postgres and the model; no Docker socket, nothing else of the host.
        NetworkMode: 'host',
        Mounts: [{ Type: 'bind', Source: home, Target: home }, ...modelsMount(deps.workerEnv.FORGE_MODELS_DIR)],
        ReadonlyRootfs: true,
        Tmpfs: WORKER_TMPFS,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        PidsLimit: 512,
        Memory: 2 * 1024 ** 3,
      },
    });
    cleanup.add('remove the candidate container', () => removeContainer(docker, names.container));
    await container.start();
    const startedWorker = await waitForWorker(container, limits, hooks.signal, deps.killSwitch);
    checkStopped();
    log.info('candidate worker', {
      ready: startedWorker.ok,
      ms: startedWorker.ms,
      ...(startedWorker.ok ? {} : { reason: startedWorker.reason }),
    });

    // ---- the cases, staged, with the approvals they ask for answered and the freeze watched
    const running = new Set<string>();
    cleanup.add('terminate the replayed tasks still running', async () => {
      for (const id of running) await temporal.terminate(id, 'the replay ended');
    });
    let workerDown = startedWorker.ok ? undefined : `the candidate worker did not start: ${startedWorker.reason}`;
    let done = false;
    const decided = new Set<string>();
    const tries = new Map<string, number>();
    const stop = async (why: unknown) => {
      stopped ??= why;
      for (const id of running) await temporal.terminate(id, 'the replay was stopped').catch(() => {});
    };
    const watch = (async () => {
      let lastCheck = 0;
      while (!done && !stopped) {
        try {
          if (hooks.signal?.aborted) {
            await stop(hooks.signal.reason ?? new Error('the replay was cancelled'));
            break;
          }
          for (const a of await pendingApprovals(scratch)) {
            if (decided.has(a.id)) continue;
            const approve = REPLAY_DECISIONS[a.kind] ?? false;
            try {
              await temporal.decideApproval({ workflowId: a.workflow_id, approvalId: a.id, approve });
              decided.add(a.id);
              log.info('replay decided an approval', { approval: a.id, kind: a.kind, tool: a.tool, approve });
            } catch (err) {
              // The workflow may not wait yet (the row is written as it starts waiting) or have moved on.
              const n = (tries.get(a.id) ?? 0) + 1;
              tries.set(a.id, n);
              if (n >= 20) {
                decided.add(a.id);
                log.warn('replay could not decide an approval', { approval: a.id, error: describeError(err) });
              }
            }
          }
          if (Date.now() - lastCheck >= 2000) {
            lastCheck = Date.now();
            try {
              await deps.killSwitch.guard('replaying a candidate');
            } catch (err) {
              await stop(err);
              break;
            }
            if (!workerDown) {
              const state = await containerState(container);
              if (!state.running) {
                // forge freeze kills the container right after it freezes: say frozen, not broken.
                try {
                  await settledGuard(deps.killSwitch);
                } catch (err) {
                  await stop(err);
                  break;
                }
                workerDown = `the candidate worker ${state.why}`;
                for (const id of running) await temporal.terminate(id, 'the candidate worker is gone').catch(() => {});
              }
            }
          }
        } catch (err) {
          log.warn('replay watch step failed', { error: describeError(err) });
        }
        await sleep(limits.pollMs);
      }
    })();

    const results: ReplayCaseResult[] = [];
    const runCases = async (specs: CaseSpec[], stage: string) => {
      let next = 0;
      let finished = 0;
      const out: ReplayCaseResult[] = new Array(specs.length);
      const lane = async () => {
        while (next < specs.length) {
          checkStopped();
          const i = next++;
          out[i] = await runCase(specs[i]!);
          checkStopped();
          note(stage, ++finished, specs.length);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(limits.concurrency, specs.length)) }, lane));
      results.push(...out);
      return out;
    };
    const runCase = async (spec: CaseSpec): Promise<ReplayCaseResult> => {
      const base = { case: spec.case, kind: spec.kind, task: spec.task, run: spec.run, workflowId: spec.workflowId };
      if (spec.unplayable) return { ...base, pass: false, reasons: [spec.unplayable], status: 'not-replayable', durationMs: 0 };
      if (workerDown) return { ...base, pass: false, reasons: [workerDown], status: 'worker-failed', durationMs: 0 };
      const t0 = Date.now();
      running.add(spec.workflowId);
      const out = await (spec.session ? seedSession(scratch, spec.session, spec) : Promise.resolve(undefined))
        .then((sessionId) =>
          temporal.runTask({
            workflowId: spec.workflowId,
            taskQueue: names.controlQueue,
            sandboxQueue: names.sandboxQueue,
            task: spec.task,
            ...(spec.limits ? { limits: spec.limits } : {}),
            ...(sessionId ? { sessionId } : {}),
            timeoutMs: limits.taskTimeoutMs,
          }),
        )
        .catch((err: unknown) => ({ error: describeError(err), result: undefined }));
      running.delete(spec.workflowId);
      const durationMs = Date.now() - t0;
      if (out.result) {
        const verdict = judgeReplay(spec.expectations, out.result);
        const reasons =
          verdict.pass || spec.kind !== 'held-out' ? verdict.reasons : [...verdict.reasons, ...heldOutFailure(spec, out.result)];
        return { ...base, pass: verdict.pass, reasons, status: out.result.status, durationMs };
      }
      const why = workerDown ?? `the replayed task did not finish: ${out.error ?? 'no result'}`;
      return { ...base, pass: false, reasons: [why], status: workerDown ? 'worker-failed' : 'error', durationMs };
    };

    let stage: ReplayReport['stage'] = 'sample';
    try {
      const sample = await runCases(batchCases(sampleIds), 'sample');
      const sampleRate = rate(sample);
      log.info('replay sample', { passRate: sampleRate, cases: sample.length });
      if (sampleRate >= REPLAY_POLICY.passThreshold && (restIds.length || heldOutCases.length)) {
        stage = 'full';
        await runCases([...batchCases(restIds), ...heldOutCases], 'rest');
      } else if (sampleRate >= REPLAY_POLICY.passThreshold) stage = 'full';
    } finally {
      done = true;
      await watch;
    }
    checkStopped();

    const [spent] = await scratch<{ input: number; output: number; cost: number }[]>`
      select coalesce(sum(input_tokens), 0)::int as input, coalesce(sum(output_tokens), 0)::int as output,
             coalesce(sum(cost_usd), 0)::float8 as cost from llm_calls`;
    const batch = results.filter((r) => r.kind === 'batch');
    const held = results.filter((r) => r.kind === 'held-out');
    const report: ReplayReport = {
      stage,
      batchPassRate: rate(batch),
      heldOutPassRate: rate(held),
      heldOutRegressions: held.filter((r) => !r.pass).length,
      cases: results,
      durationMs: Date.now() - started,
      tokens: { input: spent?.input ?? 0, output: spent?.output ?? 0 },
      costUsd: spent?.cost ?? 0,
    };
    log.info('replay finished', {
      stage,
      batchPassRate: report.batchPassRate,
      heldOutPassRate: report.heldOutPassRate,
      heldOutRegressions: report.heldOutRegressions,
      cases: results.length,
      costUsd: spent?.cost ?? 0,
      ms: report.durationMs,
    });
    return report;
  } catch (err) {
    throw stopped ?? err;
  } finally {
    note('cleaning up');
    await cleanup.run();
  }
}

/** A pass rate over case runs; with none run (no held-out task), nothing failed. */
function rate(results: readonly ReplayCaseResult[]): number {
  return results.length ? results.filter((r) => r.pass).length / results.length : 1;
}

/** A session as the task at `position` saw it in production: the session's title and every exchange before that place. */
async function earlierExchanges(sql: Sql, id: string, position: number): Promise<EarlierExchanges> {
  const [session] = await sql<{ title: string }[]>`select title from sessions where id = ${id}`;
  const earlier = await sql<EarlierExchanges['earlier']>`
    select st.position, st.created_at as joined_at, t.workflow_id, t.task, t.status, t.result, t.error, t.created_at, t.updated_at
    from session_tasks st join tasks t on t.workflow_id = st.workflow_id
    where st.session_id = ${id} and st.position < ${position}
    order by st.position`;
  return { id, title: session?.title ?? id, position, earlier };
}

/**
 * The session a replayed run continues, in the scratch database: production's earlier exchanges,
 * whole and at their places, so the candidate's own session policy cuts them as production's cut
 * them and the run takes the task's place. A session of the run's own (the original's id with the
 * case and run after it, the one thing the model sees differ): runs of one case, and cases of one
 * session, must not see each other's replays as earlier exchanges. Its id, to start the task with.
 */
export async function seedSession(scratch: Sql, session: EarlierExchanges, spec: { case: string; run: number }): Promise<string> {
  const suffix = `.e${spec.case}.r${spec.run}`;
  const id = `${session.id.slice(0, 64 - suffix.length)}${suffix}`;
  await scratch.begin(async (tx) => {
    await tx`insert into sessions (id, title) values (${id}, ${session.title}) on conflict (id) do nothing`;
    for (const e of session.earlier) {
      // Its own workflow ids too (never shown to the model): a task belongs to one session.
      const workflowId = `${id}.s${e.position}`;
      await tx`insert into tasks (workflow_id, task, status, result, error, created_at, updated_at)
               values (${workflowId}, ${e.task}, ${e.status}, ${e.result === null ? null : tx.json(e.result as never)}, ${e.error},
                       ${e.created_at}, ${e.updated_at})
               on conflict (workflow_id) do nothing`;
      await tx`insert into session_tasks (workflow_id, session_id, position, created_at)
               values (${workflowId}, ${id}, ${e.position}, ${e.joined_at}) on conflict (workflow_id) do nothing`;
    }
  });
  return id;
}

/**
 * Past tasks that completed in production, newest first, one per distinct task text: not in the
 * batch, not themselves evidence, not part of a session (their earlier exchanges are not replayed).
 */
async function heldOutTasks(
  sql: Sql,
  exclude: ReadonlySet<string>,
  n: number,
): Promise<{ workflowId: string; task: string; calls: RecordedCall[] }[]> {
  const rows = await sql<{ workflow_id: string; task: string; calls: unknown }[]>`
    select t.workflow_id, t.task, t.result->'calls' as calls from tasks t
    where t.status = 'completed' and t.result->>'status' = 'completed'
      and not exists (select 1 from failure_evidence e where e.workflow_id = t.workflow_id)
      and not exists (select 1 from session_tasks s where s.workflow_id = t.workflow_id)
    order by t.updated_at desc, t.workflow_id
    limit ${n * 20}`;
  const seen = new Set(exclude);
  const out: { workflowId: string; task: string; calls: RecordedCall[] }[] = [];
  for (const r of rows) {
    const key = normalised(r.task);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ workflowId: r.workflow_id, task: r.task, calls: recordedCalls(r.calls) });
    if (out.length >= n) break;
  }
  return out;
}

/** The kill switch past its cache: a freeze that just killed the container is seen, and refuses. */
async function settledGuard(killSwitch: ReplayDeps['killSwitch']): Promise<void> {
  await sleep(KILL_SWITCH_CACHE_MS);
  await killSwitch.guard('replaying a candidate');
}

/** Until the container's worker says it started (its log), or it exits, or time runs out; a freeze stops the wait. */
async function waitForWorker(
  container: Docker.Container,
  limits: ReplayLimits,
  signal: AbortSignal | undefined,
  killSwitch: ReplayDeps['killSwitch'],
): Promise<{ ok: true; ms: number } | { ok: false; ms: number; reason: string }> {
  const t0 = Date.now();
  while (Date.now() - t0 < limits.workerStartMs && !signal?.aborted) {
    await killSwitch.guard('replaying a candidate');
    const state = await containerState(container);
    const text = await containerLog(container, 400).catch(() => '');
    if (text.includes('"msg":"worker started"')) return { ok: true, ms: Date.now() - t0 };
    if (!state.running) {
      await settledGuard(killSwitch);
      return { ok: false, ms: Date.now() - t0, reason: state.why };
    }
    await sleep(limits.pollMs);
  }
  const text = await containerLog(container).catch(() => '');
  return {
    ok: false,
    ms: Date.now() - t0,
    reason: `its worker did not start within ${Math.round(limits.workerStartMs / 1000)} s: ${lastLines(text)}`,
  };
}

/** The calls a task's stored result holds that succeeded, with their outputs (anything else in it is ignored). */
export function recordedCalls(raw: unknown): RecordedCall[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((c: unknown) => {
    if (!c || typeof c !== 'object') return [];
    const call = c as { tool?: unknown; input?: unknown; output?: unknown; status?: unknown };
    if (typeof call.tool !== 'string' || call.status !== 'succeeded' || !('output' in call)) return [];
    return [{ tool: call.tool, input: call.input, output: call.output }];
  });
}

/** JSON with object keys sorted, so two inputs compare equal whatever order their keys came in (jsonb reorders them). */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The output production's run had for this very call (same tool, equal input), when it made it. */
export function recordedOutput(recorded: readonly RecordedCall[], tool: string, input: unknown): { output: unknown } | undefined {
  const key = canonicalJson(input ?? null);
  const hit = recorded.find((c) => c.tool === tool && canonicalJson(c.input ?? null) === key);
  return hit ? { output: hit.output } : undefined;
}

const isDryRun = (output: unknown) => !!output && typeof output === 'object' && (output as { dryRun?: unknown }).dryRun === true;

/**
 * Why a held-out task's replay did not complete, in words a person reads in `forge evolve show`: how
 * it ended, and its calls against production's. A write answered as a dry run (production made no
 * call with that input) is said plainly: the agent read a note where production's read the tool's
 * output, so the replay is not faithful and its failure may not be the candidate's doing.
 */
function heldOutFailure(spec: CaseSpec, result: TaskResult): string[] {
  const reasons: string[] = [];
  if (result.stoppedBy) reasons.push(`its ${result.stoppedBy} bound stopped it after ${result.turns} turn(s), before an answer`);
  else if (result.answer.trim()) reasons.push(`it ended: ${result.answer.replace(/\s+/g, ' ').slice(0, 200)}`);
  const list = (calls: string[]) => {
    if (!calls.length) return 'nothing';
    const shown = calls.slice(0, 10).join(', ');
    return calls.length > 10 ? `${shown}, … (${calls.length} calls)` : shown;
  };
  const dry = result.calls.filter((c) => c.status === 'succeeded' && isDryRun(c.output));
  reasons.push(
    `calls in production: ${list((spec.recorded ?? []).map((c) => c.tool))}; in the replay: ${list(
      result.calls.map((c) => `${c.tool}${isDryRun(c.output) ? ' (dry run)' : c.status === 'succeeded' ? '' : ` (${c.status})`}`),
    )}`,
  );
  if (dry.length)
    reasons.push(
      `${[...new Set(dry.map((c) => c.tool))].join(', ')} changes things outside Forge, so the replay did not run it and answered ${dry.length} call(s) as a dry run; production's run made no call with that input, so there was no real output to give the agent. This held-out task cannot be replayed faithfully: its failure may not be the candidate's doing`,
    );
  return reasons;
}

/**
 * A replay's tool call of a write (or destructive) tool: never run. Answered with the output
 * production's run of the same task had for the same call (same tool, equal input) when it made one —
 * so the agent reads what production's read (a note's id, say) and the held-out task can go on as it
 * did — else with a dry run's note that says it was not run. Both in the shape a sandbox run has.
 * Undefined for a read, which runs as in production.
 */
export async function replayDryRun(
  toolsDir: string,
  tool: { name: string; version: number; input?: unknown },
  recorded: readonly RecordedCall[] = [],
): Promise<{ ok: true; exitCode: 0; output: unknown; stdout: ''; stderr: ''; durationMs: 0 } | undefined> {
  const text = await fs.readFile(path.join(toolsDir, tool.name, `v${tool.version}`, 'manifest.json'), 'utf8').catch(() => null);
  if (text === null) return undefined; // the runner says what is missing
  const manifest = toolManifestSchema.safeParse(JSON.parse(text));
  if (manifest.success && manifest.data.sideEffect === 'read' && !manifest.data.destructive) return undefined;
  const answered = recordedOutput(recorded, tool.name, tool.input);
  return {
    ok: true,
    exitCode: 0,
    output: answered
      ? answered.output
      : {
          dryRun: true,
          tool: tool.name,
          version: tool.version,
          note: `${tool.name} v${tool.version} changes things outside Forge, so this replay of a candidate harness did not run it: treat the call as done as asked`,
        },
    stdout: '',
    stderr: '',
    durationMs: 0,
  };
}
