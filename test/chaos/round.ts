/**
 * One chaos round: a fresh catalog (database and FORGE_HOME), a worker process that is SIGKILLed at
 * random points and started again at once (as `forge up` does with a crashed worker), components
 * restarted mid-cycle, and Forge's cycles run through it all: two forges, a task that calls a tool,
 * forges another and waits for a person's approval, an improve cycle and, when asked, an evolve
 * cycle. Afterwards everything is checked through the database, Temporal and Docker directly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  type Client,
  Connection,
  Client as TemporalClient,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
} from '@temporalio/client';
import { hasPollers } from '../../app/stack.ts';
import { type ForgeConfig, loadConfig } from '../../domain/config.ts';
import type { EvolveOutcome, ReplayReport } from '../../domain/evolve.ts';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { ImproveOutcome } from '../../domain/improve.ts';
import type { TaskResult } from '../../domain/task.ts';
import { dockerClient } from '../../infra/docker.ts';
import { migrate } from '../../infra/migrate.ts';
import { sleep } from '../../infra/processes.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { connect, type Sql } from '../../services/db.ts';
import { consentUpdate, decideApprovalUpdate, evolveProgressQuery } from '../../workflows/definitions.ts';
import { slowed } from '../helpers/crash-rig.ts';
import { workerProcessEnv } from '../helpers/worker-process.ts';
import type { Component, ComponentName } from './components.ts';

export type CycleKind = 'forge' | 'task' | 'improve' | 'evolve';

export interface RoundOptions {
  round: number;
  /** where this round's FORGE_HOME and logs live */
  dir: string;
  /** the workers' bundle cache, shared by the rounds (a fresh one costs every round's first worker seconds) */
  cacheDir: string;
  temporalAddress: string;
  dockerHost: string;
  databaseUrl: string;
  /** the Postgres flavour under test, for the report */
  backend: 'pglite' | 'postgres';
  /** stop killing after this many SIGKILLs (the cycles then finish in peace) */
  maxKills: number;
  /** components to restart once each, mid-cycle, in this order */
  restarts: Component[];
  /** run an evolve cycle too (slow: a scratch tree's checks, an image build and a replay) */
  evolve: boolean;
  /** every aimEvery-th kill waits for a model call of the cycle kind hit least so far (1: every kill) */
  aimEvery: number;
  /** how long an aimed kill waits for its model call before it strikes at a random moment instead */
  aimWaitMs: number;
  /** how long a worker lives between kills: uniform in [min, max] ms once it polls */
  lifeMs: [number, number];
  /** the wait before each restart: uniform in [min, max] ms */
  restartGapMs: [number, number];
  /** a round that has not finished by then is reported as stuck */
  deadlineMs: number;
  random: () => number;
  say: (line: string) => void;
}

export interface KillPoint {
  at: number;
  /** what was in flight: `<workflow type>:<activity type>`, or `<workflow type>:workflow-task` between activities */
  points: string[];
  kinds: CycleKind[];
  /** the cycle kind whose model call the kill waited for, when it was aimed */
  aimedAt?: CycleKind;
}

export interface CycleResult {
  kind: CycleKind;
  workflowId: string;
  status: string;
  reason: string;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface RoundReport {
  round: number;
  backend: 'pglite' | 'postgres';
  kills: KillPoint[];
  restarts: { component: ComponentName; at: number; points: string[]; ms: number }[];
  /** worker exits nobody asked for (e.g. when Temporal went away under it); each was restarted at once */
  workerExits: number;
  approvals: number;
  cycles: CycleResult[];
  checks: Check[];
  durationMs: number;
}

const KIND_OF: Record<string, CycleKind> = {
  forgeWorkflow: 'forge',
  taskWorkflow: 'task',
  improveWorkflow: 'improve',
  evolveWorkflow: 'evolve',
};

/** A model call's purpose (`forge.spec`, `task.turn`, `improve.rewrite`, `evolve.patch`, …) names its cycle. */
const PURPOSE_KIND: Record<string, CycleKind> = { forge: 'forge', task: 'task', improve: 'improve', evolve: 'evolve' };

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const NOTE_TASK = 'make a note titled stats with the word count of "a b c d"';

/** Every scripted reply a little late, so the worker can die while the model "thinks", not only between steps. */
function scenarios(evolve: boolean, delayMs: number): ScenarioInput[] {
  const all = () => true;
  const list = [
    slowed('scenarios/forge-word-count.json', all, delayMs),
    slowed('scenarios/improve-slugify.json', all, delayMs),
    slowed('scenarios/demo.json', all, delayMs),
  ];
  if (evolve) list.unshift(evolveCoder(delayMs));
  return list;
}

/** evolve-crash's coding agent: one more line in the agent prompt, a patch that passes its checks. */
function evolveCoder(delayMs: number): ScenarioInput {
  const agent = fs.readFileSync(path.join(root, 'harness/prompts/agent.ts'), 'utf8');
  const rule = '- Requests are often worded differently from a tool description: prefer an offered tool that does the job over forge_tool.';
  return {
    name: 'chaos: the coding agent',
    rules: [
      {
        match: { purpose: 'evolve.patch' },
        responses: [
          {
            delay_ms: delayMs,
            tool_use: {
              name: 'submit_patch',
              input: {
                rationale: 'weigh what an offered tool does, not its words',
                edits: [
                  {
                    path: 'harness/prompts/agent.ts',
                    content: agent.replace('- A task that needs no tool', `${rule}\n- A task that needs no tool`),
                  },
                ],
              },
            },
          },
        ],
      },
    ],
  };
}

const pick = (random: () => number, [min, max]: [number, number]) => min + Math.floor(random() * (max - min + 1));

/** A worker process kept alive the way `forge up` keeps one: a dead one is replaced at once. */
class Supervisor {
  private child: ChildProcess | undefined;
  private stopping = false;
  exits = 0;
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logPath: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const out = fs.openSync(this.logPath, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      env: this.env,
      cwd: root,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.child = child;
    child.once('exit', () => {
      if (this.child !== child || this.stopping) return;
      // Nobody killed it: it gave up on its own (Temporal or Postgres went away). Started again at once.
      this.exits++;
      this.start();
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.start();
    const exited = new Promise((r) => child.once('exit', r));
    this.child = undefined; // its exit is ours, not a crash
    child.kill('SIGKILL');
    await exited;
    this.start();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

async function temporalClient(address: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new TemporalClient({ connection, namespace: 'default' });
}

/** Whether the current worker polls both queues (false while Temporal is away). */
async function polling(client: Client, cfg: ForgeConfig, pid: number | undefined): Promise<boolean> {
  if (!pid) return false;
  try {
    return (
      (await hasPollers(client, cfg.FORGE_TASK_QUEUE, 'workflow', pid)) &&
      (await hasPollers(client, cfg.FORGE_SANDBOX_QUEUE, 'activity', pid))
    );
  } catch {
    return false;
  }
}

/** The running workflows of this round and what each has in flight. */
async function inFlight(client: Client, cfg: ForgeConfig): Promise<{ points: string[]; kinds: CycleKind[]; open: string[] }> {
  const points: string[] = [];
  const kinds = new Set<CycleKind>();
  const open: string[] = [];
  try {
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${cfg.FORGE_TASK_QUEUE}' AND ExecutionStatus = 'Running'` })) {
      open.push(wf.workflowId);
      const kind = KIND_OF[wf.type];
      if (kind) kinds.add(kind);
      const described = await client.workflow.getHandle(wf.workflowId, wf.runId).describe();
      const pending = described.raw.pendingActivities ?? [];
      if (pending.length === 0) points.push(`${wf.type}:workflow-task`);
      for (const a of pending) points.push(`${wf.type}:${a.activityType?.name ?? '?'}`);
    }
  } catch {
    // Temporal is restarting: nothing can be said about this instant.
  }
  return { points: points.sort(), kinds: [...kinds].sort(), open };
}

function isConnectionError(err: unknown): boolean {
  const text = String((err as Error)?.message ?? err);
  return /UNAVAILABLE|ECONNREFUSED|connect|Connection|DEADLINE_EXCEEDED|socket|transport|closed/i.test(text);
}

/** A cycle's outcome, waiting through Temporal restarts; a workflow that failed is a failure with its reason. */
async function outcome(client: Client, kind: CycleKind, workflowId: string, until: number): Promise<CycleResult> {
  for (;;) {
    try {
      const res = (await client.workflow.getHandle(workflowId).result()) as ForgeOutcome | TaskResult | ImproveOutcome | EvolveOutcome;
      const reason = 'reason' in res && res.reason ? res.reason : 'answer' in res ? res.answer : '';
      return { kind, workflowId, status: res.status, reason: String(reason ?? '') };
    } catch (err) {
      if (err instanceof WorkflowFailedError)
        return { kind, workflowId, status: 'workflow-failed', reason: (err.cause as Error | undefined)?.message ?? err.message };
      if (Date.now() > until)
        return { kind, workflowId, status: 'stuck', reason: `no outcome before the round's deadline: ${(err as Error).message}` };
      if (!isConnectionError(err)) throw err;
      await sleep(1000);
    }
  }
}

export async function runRound(opts: RoundOptions): Promise<RoundReport> {
  const started = Date.now();
  const until = started + opts.deadlineMs;
  const home = path.join(opts.dir, 'home');
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(opts.cacheDir, { recursive: true });
  fs.symlinkSync(opts.cacheDir, path.join(home, 'cache'));
  const cfg = loadConfig(
    {
      FORGE_TASK_QUEUE: `chaos-control-${opts.round}-${started}`,
      FORGE_SANDBOX_QUEUE: `chaos-sandbox-${opts.round}-${started}`,
      TEMPORAL_ADDRESS: opts.temporalAddress,
      DOCKER_HOST: opts.dockerHost,
      DATABASE_URL: opts.databaseUrl,
      FORGE_POOL_SIZE: '0',
    },
    home,
  );
  const sql = connect(opts.databaseUrl, { max: 2 });
  await migrate(sql);
  const model: ScriptedModel = await startScriptedModel({ scenarios: scenarios(opts.evolve, 800) });
  const client = await temporalClient(opts.temporalAddress);
  const env = {
    ...workerProcessEnv(cfg, { databaseUrl: opts.databaseUrl, modelUrl: model.url, home }),
    TEMPORAL_ADDRESS: opts.temporalAddress,
    DOCKER_HOST: opts.dockerHost,
    FORGE_LOG_LEVEL: 'warn',
  };
  const worker = new Supervisor(env, path.join(opts.dir, 'worker.log'));
  const report: RoundReport = {
    round: opts.round,
    backend: opts.backend,
    kills: [],
    restarts: [],
    workerExits: 0,
    approvals: 0,
    cycles: [],
    checks: [],
    durationMs: 0,
  };
  let done = false;
  worker.start();
  try {
    const start = async (kind: CycleKind, workflowId: string, type: string, arg: unknown) => {
      // Temporal may be restarting: try again; a start that went through before the error is the same workflow.
      for (;;) {
        try {
          await client.workflow.start(type, { taskQueue: cfg.FORGE_TASK_QUEUE, workflowId, args: [arg] });
          break;
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) break;
          if (!isConnectionError(err) || Date.now() > until) throw err;
          await sleep(1000);
        }
      }
      opts.say(`  started ${kind} ${workflowId}`);
      const res = await outcome(client, kind, workflowId, until);
      opts.say(`  ${kind} ${workflowId}: ${res.status}${res.reason ? ` (${res.reason.slice(0, 120)})` : ''}`);
      report.cycles.push(res);
      return res;
    };
    const id = (what: string) => `chaos-r${opts.round}-${what}-${started}`;
    const sandboxQueue = cfg.FORGE_SANDBOX_QUEUE;
    // Three lanes at once: what a lane starts second needs what it started first.
    const lanes: Promise<unknown>[] = [
      (async () => {
        await start('forge', id('forge-count_words'), 'forgeWorkflow', {
          need: 'count the words in a text: input text, output words, characters and lines',
          sandboxQueue,
        });
        await start('task', id('task-note'), 'taskWorkflow', { task: NOTE_TASK, sandboxQueue });
      })(),
      (async () => {
        await start('forge', id('forge-slugify'), 'forgeWorkflow', { need: 'turn a title into a URL slug', sandboxQueue });
        await start('improve', id('improve-slugify'), 'improveWorkflow', {
          tool: 'slugify',
          trigger: 'manual',
          reason: 'it must handle accented titles',
          sandboxQueue,
        });
      })(),
    ];
    if (opts.evolve) {
      lanes.push(
        (async () => {
          const [row] = await sql<{ id: string }[]>`
            insert into failure_evidence (idempotency_key, workflow_id, source, failure_type, expected, happened, expectations, severity, trace)
            values (${`chaos:${opts.round}`}, ${`task-chaos-${opts.round}`}, 'feedback', 'output', 'an answer in words', 'no answer',
                    ${sql.json([{ kind: 'completes' }] as never)}, 0.8,
                    ${sql.json({ task: 'write a haiku about autumn leaves', status: 'failed', calls: [], forged: [] } as never)})
            returning id`;
          // A verified candidate waits for a person's consent: the round's person says no (a swap of
          // the control worker is the deploy tests' business), through the update `forge evolve
          // reject` sends, asked again until it lands, kills and Temporal restarts notwithstanding.
          const evolveId = id('evolve');
          let ended = false;
          const consenter = (async () => {
            while (!ended && Date.now() < until) {
              try {
                const handle = client.workflow.getHandle(evolveId);
                const waiting = (await handle.query(evolveProgressQuery)).awaitingConsent;
                if (waiting) {
                  await handle.executeUpdate(consentUpdate, {
                    args: [
                      {
                        candidateId: waiting.candidateId,
                        imageDigest: waiting.imageDigest,
                        approve: false,
                        by: 'chaos',
                        note: 'the chaos run rejects every candidate',
                      },
                    ],
                  });
                  opts.say(`  consent: chaos rejected ${waiting.candidateId}`);
                  return;
                }
              } catch {
                // Not started yet, no worker to answer the query (killed), Temporal restarting: ask again.
              }
              await sleep(1000);
            }
          })();
          await start('evolve', evolveId, 'evolveWorkflow', {
            batchKey: `chaos-${opts.round}:output`,
            failureType: 'output',
            evidenceIds: [Number(row!.id)],
            sandboxQueue,
            maxAttempts: 1,
          });
          ended = true;
          await consenter;
          // What the replay judged, for the log: the held-out set is whatever tasks of the round had completed by then.
          try {
            const [candidate] = await sql<
              { replay: ReplayReport | null }[]
            >`select replay from evolve_candidates where workflow_id = ${evolveId}`;
            for (const c of candidate?.replay?.cases ?? [])
              opts.say(
                `    replay ${c.kind} "${c.task.slice(0, 70)}" run ${c.run}: ${c.pass ? 'pass' : 'FAIL'} ${c.status}${c.reasons.length ? ` — ${c.reasons.join('; ').slice(0, 300)}` : ''}`,
              );
          } catch {
            // Postgres is restarting: the log goes without the replay table.
          }
        })(),
      );
    }
    // A lane that threw (not a cycle that failed: the driver itself) is a cycle without an outcome.
    const cycles = Promise.allSettled(lanes).then((settled) => {
      done = true;
      for (const lane of settled)
        if (lane.status === 'rejected')
          report.cycles.push({
            kind: 'forge',
            workflowId: '?',
            status: 'stuck',
            reason: `the chaos driver's lane threw: ${String(lane.reason)}`,
          });
      return settled;
    });

    // A person approves whatever waits (the note is a write); each approval once, sent again only if refused.
    const decided = new Set<string>();
    const approver = (async () => {
      while (!done) {
        try {
          const rows = await sql<{ id: string; workflow_id: string }[]>`select id, workflow_id from approvals where status = 'pending'`;
          for (const row of rows) {
            if (decided.has(row.id)) continue;
            decided.add(row.id);
            void client.workflow
              .getHandle(row.workflow_id)
              .executeUpdate(decideApprovalUpdate, { args: [{ approvalId: row.id, approve: true, by: 'chaos' }] })
              .then(() => report.approvals++)
              .catch(() => setTimeout(() => decided.delete(row.id), 3000));
          }
        } catch {
          // Postgres is restarting.
        }
        await sleep(500);
      }
    })();

    // The killer: once the worker polls, let it live a random while, then SIGKILL it at whatever point it
    // is. Every aimEvery-th kill aims instead: at the next model call of the unfinished cycle kind aimed
    // at least so far, a random instant into its (delayed) reply, so every kind of cycle is hit mid-call.
    const planned: Record<CycleKind, number> = { forge: 2, task: 1, improve: 1, evolve: opts.evolve ? 1 : 0 };
    const aimedAtKind = (kind: CycleKind) => report.kills.filter((k) => k.aimedAt === kind).length;
    const targets = () => {
      const open = (Object.keys(planned) as CycleKind[]).filter((k) => report.cycles.filter((c) => c.kind === k).length < planned[k]);
      const least = Math.min(...open.map(aimedAtKind));
      return open.filter((k) => aimedAtKind(k) === least);
    };
    const killer = (async () => {
      while (!done && report.kills.length < opts.maxKills && Date.now() < until) {
        while (!done && Date.now() < until && !(await polling(client, cfg, worker.pid))) await sleep(200);
        const wake = Date.now() + pick(opts.random, opts.lifeMs);
        let aimedAt: CycleKind | undefined;
        if (report.kills.length % opts.aimEvery === opts.aimEvery - 1) {
          const seen = model.requests.length;
          const giveUp = Date.now() + opts.aimWaitMs;
          while (!done && Date.now() < giveUp && !aimedAt) {
            const fresh = model.requests.slice(seen).map((r) => PURPOSE_KIND[String(r.headers['x-forge-purpose']).split('.')[0]!]);
            const wanted = targets();
            aimedAt = fresh.find((k) => k && wanted.includes(k));
            if (!aimedAt) await sleep(50);
          }
          if (aimedAt) await sleep(pick(opts.random, [0, 600]));
        }
        while (!done && !aimedAt && Date.now() < wake) await sleep(100);
        if (done) break;
        const { points, kinds } = await inFlight(client, cfg);
        if (points.length === 0) continue; // nothing running at this instant: not a kill mid-cycle
        await worker.kill();
        report.kills.push({ at: Date.now() - started, points, kinds, ...(aimedAt ? { aimedAt } : {}) });
        opts.say(
          `  kill ${report.kills.length} at ${((Date.now() - started) / 1000).toFixed(1)} s${aimedAt ? ` (aimed at a ${aimedAt} model call)` : ''}: ${points.join(', ')}`,
        );
      }
    })();

    // The restarts: each component once, at a random moment while cycles run.
    const restarter = (async () => {
      for (const component of opts.restarts) {
        const wake = Date.now() + pick(opts.random, opts.restartGapMs);
        while (!done && Date.now() < wake) await sleep(100);
        if (done) break;
        const { points } = await inFlight(client, cfg);
        const t0 = Date.now();
        await component.restart();
        report.restarts.push({ component: component.name, at: t0 - started, points, ms: Date.now() - t0 });
        opts.say(`  restarted ${component.name} in ${Date.now() - t0} ms at ${((t0 - started) / 1000).toFixed(1)} s: ${points.join(', ')}`);
      }
    })();

    await cycles;
    await Promise.all([approver, killer, restarter]);
    // Children and anything else the round started must have ended too.
    const { open } = await inFlight(client, cfg);
    await worker.stop();
    report.workerExits = worker.exits;
    report.checks = await checkRound(sql, cfg, home, report, open);
  } finally {
    done = true;
    await worker.stop();
    await client.connection.close().catch(() => {});
    await model.close();
    await sql.end({ timeout: 2 }).catch(() => {});
  }
  report.durationMs = Date.now() - started;
  return report;
}

const rowsText = (rows: readonly Record<string, unknown>[]) => rows.map((r) => Object.values(r).join(' ')).join('; ');

/**
 * What must hold after the chaos: every cycle ended with an outcome and a reason; nothing is there
 * twice (versions, invocations, audit entries, approvals, promotions, evolve candidates); nothing
 * is left running (workflows, containers, networks).
 */
async function checkRound(sql: Sql, cfg: ForgeConfig, home: string, report: RoundReport, open: string[]): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  const ended = report.cycles.filter((c) => c.status !== 'stuck' && (c.status !== 'workflow-failed' || c.reason));
  const failedWithout = report.cycles.filter((c) => /failed|kept|refused|stopped/.test(c.status) && !c.reason.trim());
  check(
    'every cycle ended: completed, or failed with a reason',
    ended.length === report.cycles.length && failedWithout.length === 0,
    report.cycles.map((c) => `${c.kind} ${c.status}`).join(', '),
  );
  check('no workflow of the round still running', open.length === 0, open.length ? open.join(', ') : 'none');
  const ledgers = await sql`
    select 'forge_runs' as ledger, workflow_id, status from forge_runs where status = 'running'
    union all select 'tasks', workflow_id, status from tasks where status = 'running'
    union all select 'improve_runs', workflow_id, status from improve_runs where status = 'running'
    union all select 'evolve_candidates', workflow_id, status from evolve_candidates where status in ('running', 'checked')`;
  check('every ledger row has its outcome', ledgers.length === 0, ledgers.length ? rowsText(ledgers) : 'none left running');

  // Versions: each row accounted for by exactly one cycle that says it registered or promoted it; no code twice.
  const versions = await sql<{ name: string; version: number; created_by: string; sha: string }[]>`
    select name, version, created_by, source_sha256 as sha from tool_versions order by name, version`;
  const claims = await sql<{ name: string; version: number; n: number }[]>`
    select name, version, count(*)::int as n from (
      select name, version from forge_runs where status = 'registered' and version is not null
      union all select tool, to_version from improve_runs where status = 'promoted' and to_version is not null) c
    group by name, version`;
  const claimed = new Map(claims.map((c) => [`${c.name}@${c.version}`, c.n]));
  const unclaimed = versions.filter((v) => !claimed.has(`${v.name}@${v.version}`));
  const sameCode = versions.filter((v, i) => versions.findIndex((w) => w.name === v.name && w.sha === v.sha) !== i);
  const byHand = versions.filter((v) => v.created_by === 'human');
  check(
    'no duplicate tool version (each claimed by one cycle, no code registered twice)',
    unclaimed.length === 0 && sameCode.length === 0 && byHand.length === 0,
    `${versions.map((v) => `${v.name}@${v.version}`).join(', ')}${unclaimed.length ? `; unclaimed: ${unclaimed.map((v) => `${v.name}@${v.version}`)}` : ''}${sameCode.length ? `; same code again: ${sameCode.map((v) => `${v.name}@${v.version}`)}` : ''}${byHand.length ? `; registered as a person's edit: ${byHand.map((v) => `${v.name}@${v.version}`)}` : ''}`,
  );
  const tools = await sql<{ name: string }[]>`select name from tools order by name`;
  const dirs = fs.existsSync(path.join(home, 'tools'))
    ? fs
        .readdirSync(path.join(home, 'tools'))
        .flatMap((t) =>
          fs.statSync(path.join(home, 'tools', t)).isDirectory()
            ? fs
                .readdirSync(path.join(home, 'tools', t))
                .filter((d) => /^v\d+$/.test(d))
                .map((d) => `${t}@${d.slice(1)}`)
            : [],
        )
        .sort()
    : [];
  const rows = versions.map((v) => `${v.name}@${v.version}`).sort();
  const orphanDirs = dirs.filter((d) => !rows.includes(d));
  check(
    'no duplicate tool (one row per name, version folders = version rows)',
    orphanDirs.length === 0 && tools.every((t) => versions.some((v) => v.name === t.name)),
    `tools ${tools.map((t) => t.name).join(', ')}${orphanDirs.length ? `; folders without a row: ${orphanDirs.join(', ')}` : ''}`,
  );

  const dupInvocations = await sql`
    select workflow_id, tool, input_hash, count(*)::int as n from invocations
    group by workflow_id, tool, input_hash having count(*) > 1`;
  const tasks = await sql<{ workflow_id: string; result: TaskResult | null }[]>`select workflow_id, result from tasks`;
  const perTask = await sql<{ workflow_id: string; n: number }[]>`
    select workflow_id, count(*)::int as n from invocations group by workflow_id`;
  const meta = new Set(['forge_tool', 'search_tools', 'ask_person']);
  const mismatched = tasks.filter((t) => {
    const calls = (t.result?.calls ?? []).filter((c) => !meta.has(c.tool) && c.status === 'succeeded').length;
    return calls !== (perTask.find((p) => p.workflow_id === t.workflow_id)?.n ?? 0);
  });
  check(
    'no duplicate invocation (one per call the task made)',
    dupInvocations.length === 0 && mismatched.length === 0,
    `${perTask.reduce((s, p) => s + p.n, 0)} invocations${dupInvocations.length ? `; twice: ${rowsText(dupInvocations)}` : ''}${mismatched.length ? `; tasks whose calls and invocations differ: ${mismatched.map((t) => t.workflow_id)}` : ''}`,
  );
  const dupAudit = await sql`
    select kind, tool, version, workflow_id, count(*)::int as n from audit_log
    where kind in ('tool_call', 'promotion')
    group by kind, tool, version, workflow_id, case when kind = 'tool_call' then input::text else '' end having count(*) > 1`;
  check('no duplicate audit entry or promotion', dupAudit.length === 0, dupAudit.length ? rowsText(dupAudit) : 'none');
  const approvals = await sql<{ workflow_id: string; kind: string; tool: string | null; status: string }[]>`
    select workflow_id, kind, tool, status from approvals order by workflow_id, created_at`;
  const dupApprovals = await sql`
    select workflow_id, kind, tool, count(*)::int as n from approvals
    group by workflow_id, kind, tool, request::text having count(*) > 1`;
  check(
    'no duplicate approval',
    dupApprovals.length === 0,
    `${approvals.map((a) => `${a.kind} ${a.tool ?? ''} ${a.status}`).join(', ') || 'none'}${dupApprovals.length ? `; twice: ${rowsText(dupApprovals)}` : ''}`,
  );
  if (report.cycles.some((c) => c.kind === 'evolve')) {
    const candidates = await sql<{ workflow_id: string; status: string; attempts: unknown[]; tree_hash: string | null }[]>`
      select workflow_id, status, attempts, tree_hash from evolve_candidates`;
    const evolves = report.cycles.filter((c) => c.kind === 'evolve').length;
    const images = await dockerClient(cfg).listImages({ filters: { label: ['forge.worker.tree'] } });
    const trees = images.map((i) => i.Labels?.['forge.worker.tree']).filter(Boolean);
    const dupTrees = trees.filter((t, i) => trees.indexOf(t) !== i);
    check(
      'no duplicate patch (one candidate per evolve cycle, one attempt, one image per tree)',
      candidates.length === evolves && candidates.every((c) => c.attempts.length <= 1) && dupTrees.length === 0,
      `${candidates.map((c) => `${c.status}, ${c.attempts.length} attempt(s)`).join('; ')}; ${images.length} candidate image(s)`,
    );
  }

  // Docker: the round's dockerd serves nothing else, so anything still there is a leftover.
  const docker = dockerClient(cfg);
  const containers = await docker.listContainers({ all: true });
  check(
    'no container left behind',
    containers.length === 0,
    containers.length ? containers.map((c) => `${c.Names.join(',')} ${c.State} ${JSON.stringify(c.Labels)}`).join('; ') : 'none',
  );
  const networks = (await docker.listNetworks()).filter((n) => !['bridge', 'host', 'none'].includes(n.Name));
  check('no network left behind', networks.length === 0, networks.length ? networks.map((n) => n.Name).join(', ') : 'none');
  return checks;
}
