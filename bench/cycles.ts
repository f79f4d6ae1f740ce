/**
 * System time of Forge's cycles through real Temporal, Postgres and Docker, with the scripted model
 * (which answers in about a millisecond, so what is left is Forge's own time):
 *
 *   node --import tsx bench/cycles.ts [--forges N] [--tasks N] [--concurrent N] [--settle-ms N] [--database postgres|pglite]
 *
 * - forge cycle: wall clock of `forgeWorkflow` (count_words, verified the first time), the model's
 *   share (every model request timed by a proxy), the rest as system time, split by step (the
 *   activities of the workflow's history, scheduled → completed; "orchestration" is what no
 *   activity covers: Temporal's round trips between them). Baseline: the verification alone.
 * - task with one tool call: `how many words are in "…"?` reusing count_words — wall clock minus
 *   the model minus the sandbox run (the invocation's recorded latency) — against a task the model
 *   answers without a call (baseline, same run).
 * - concurrent tasks: N such tasks started at once: throughput, p50/p95 of each task's wall clock,
 *   failures, and where the CPU went (this process — worker, activities, bench —, Temporal,
 *   Postgres, Docker) against one task alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { ScenarioInput } from '../scripted-model/scenario.ts';
import { setLogLevel } from '../services/log.ts';
import { machine, percentile, report, round, summary } from './lib.ts';
import { type Stack, startStack } from './stack.ts';

const argv = process.argv.slice(2);
const num = (flag: string, fallback: number) => {
  const at = argv.indexOf(flag);
  const v = at >= 0 ? Number(argv[at + 1]) : fallback;
  if (!Number.isInteger(v) || v < 0) throw new Error(`${flag} expects a whole number`);
  return v;
};
const forges = num('--forges', 3);
const tasks = num('--tasks', 5);
const concurrent = num('--concurrent', 200);
/**
 * Pause before each timed run: the sandbox pool replaces a used container a moment after its job
 * (services/sandbox/pool.ts SETTLE_MS), inside the seconds a real model takes between one run and
 * the next; the scripted model answers in a millisecond, so without the pause each run would pay
 * the previous one's replacement.
 */
const settleMs = num('--settle-ms', 2500);
const database = (argv.includes('--database') ? argv[argv.indexOf('--database') + 1] : 'postgres') as 'postgres' | 'pglite';
setLogLevel((process.env.FORGE_LOG_LEVEL as 'error') ?? 'error');

interface Timing {
  workflowId: string;
  wallMs: number;
  modelMs: number;
  modelRequests: number;
  /** activity type → ms (scheduled → closed), summed */
  steps: Record<string, number>;
  /** Temporal round trips of the workflow (children included): workflow tasks, and local activities (one activation each) */
  trips: Trips;
}

interface Trips {
  workflowTasks: number;
  localActivities: number;
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : Number.NaN;

type Marker = { markerName?: string | null; details?: Record<string, { payloads?: { data?: Uint8Array | null }[] | null }> | null };

/**
 * A local activity's type and the time it completed, from its marker (the SDK core's
 * LocalActivityMarkerData, as JSON). Its completion time is the workflow task's start plus the time
 * the worker took to get there, so a local activity's own time is measured from the workflow task's
 * start or the previous local activity of the same task, whichever is later.
 */
function localActivityOf(marker: Marker | null | undefined): { type: string; completedAt: number } | undefined {
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const raw = marker.details?.data?.payloads?.[0]?.data;
  if (!raw) return undefined;
  const data = JSON.parse(Buffer.from(raw).toString('utf8')) as {
    activity_type?: string;
    complete_time?: { seconds?: number; nanos?: number };
  };
  return { type: data.activity_type ?? '?', completedAt: ms(data.complete_time) };
}

/** The workflow's activities from its history: time from scheduled to closed (local ones: see localActivityOf), per activity type. */
async function stepsOf(client: Client, workflowId: string): Promise<{ steps: Record<string, number>; wallMs: number; trips: Trips }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const steps: Record<string, number> = {};
  const trips: Trips = { workflowTasks: 0, localActivities: 0 };
  /** when the current workflow task started, or its last local activity completed */
  let since = Number.NaN;
  for (const e of events) {
    const at = ms(e.eventTime as never);
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at });
    const closed =
      e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? undefined;
    if (closed) {
      const from = scheduled.get(String(closed.scheduledEventId));
      if (from) steps[from.type] = (steps[from.type] ?? 0) + (at - from.at);
    }
    if (e.workflowTaskStartedEventAttributes) {
      since = at;
      trips.workflowTasks++;
    }
    const local = localActivityOf(e.markerRecordedEventAttributes);
    if (local) {
      trips.localActivities++;
      steps[local.type] = (steps[local.type] ?? 0) + Math.max(0, local.completedAt - since);
      since = Math.max(since, local.completedAt);
    }
    const child = e.childWorkflowExecutionCompletedEventAttributes;
    if (child) {
      const inner = await stepsOf(client, child.workflowExecution?.workflowId ?? '');
      for (const [k, v] of Object.entries(inner.steps)) steps[`${k} (child)`] = (steps[`${k} (child)`] ?? 0) + v;
      trips.workflowTasks += inner.trips.workflowTasks;
      trips.localActivities += inner.trips.localActivities;
    }
  }
  const wallMs = ms(events.at(-1)?.eventTime as never) - ms(events[0]?.eventTime as never);
  return { steps, wallMs, trips };
}

async function timed(stack: Stack, workflow: string, workflowId: string, args: unknown[]): Promise<Timing & { result: unknown }> {
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const before = { ms: stack.modelClock.ms, n: stack.modelClock.requests };
  const handle = await stack.client.workflow.start(workflow, { taskQueue: stack.cfg.FORGE_TASK_QUEUE, workflowId, args });
  const result = await handle.result();
  const { steps, wallMs, trips } = await stepsOf(stack.client, workflowId);
  return {
    workflowId,
    wallMs,
    trips,
    modelMs: stack.modelClock.ms - before.ms,
    modelRequests: stack.modelClock.requests - before.n,
    steps,
    result,
  };
}

/** The sandbox runs a task's calls took, as metered (host wall clock around the sandbox job). */
async function sandboxMs(stack: Stack, workflowId: string): Promise<number> {
  const [row] = await stack.db.sql<
    { ms: number }[]
  >`select coalesce(sum(latency_ms), 0)::int as ms from invocations where workflow_id = ${workflowId}`;
  return row?.ms ?? 0;
}

// --- CPU per component (Linux /proc) -----------------------------------------------------------

const TICK = 100; // USER_HZ
function cpuOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK; // utime + stime, ms
  } catch {
    return 0;
  }
}
function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
/** CPU ms so far per component, from every process on the machine, read-only. */
function cpuByComponent(): Record<string, number> {
  const out: Record<string, number> = { forge: 0, temporal: 0, postgres: 0, docker: 0 };
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const comm = commOf(pid);
    const cpu = cpuOf(pid);
    if (pid === process.pid) out.forge! += cpu;
    else if (comm === 'temporal') out.temporal! += cpu;
    else if (comm === 'postgres' || comm === 'postmaster') out.postgres! += cpu;
    else if (['dockerd', 'containerd', 'docker-proxy'].includes(comm) || comm.startsWith('containerd-shim') || comm === 'runc')
      out.docker! += cpu;
  }
  return out;
}
function totalCpuMs(): { busy: number; all: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const all = line.reduce((a, b) => a + b, 0);
  return { busy: ((all - idle) * 1000) / TICK, all: (all * 1000) / TICK };
}

// --- the figures -------------------------------------------------------------------------------

const stepRows = (list: Timing[], extra: Record<string, number[]> = {}) => {
  const types = [...new Set(list.flatMap((t) => Object.keys(t.steps)))];
  const rows = types.map((type) => [type, ...((s) => [s.p50, s.p95])(summary(list.map((t) => t.steps[type] ?? 0)))]);
  for (const [label, values] of Object.entries(extra)) rows.push([label, ...((s) => [s.p50, s.p95])(summary(values))]);
  return rows;
};

/** Workflow tasks and local activities per run (the same in every run of a figure, unless one retried): the round trips that are orchestration. */
const tripsRow = (list: Timing[]) => {
  const wft = summary(list.map((t) => t.trips.workflowTasks));
  const local = summary(list.map((t) => t.trips.localActivities));
  return ['round trips p50: workflow tasks / local activities', `${wft.p50} / ${local.p50}`, `${wft.p95} / ${local.p95}`];
};

/** What no activity covers: workflow tasks and the round trips between activities (activities of one turn overlap: then less). */
const orchestrationOf = (list: Timing[]) => list.map((r) => r.wallMs - Object.values(r.steps).reduce((a, b) => a + b, 0));

async function forgeFigure(stack: Stack) {
  const runs: (Timing & { systemMs: number; verifyMs: number })[] = [];
  for (let i = 0; i < forges; i++) {
    // The first is count_words itself (the tasks below reuse it); the others forge the same tool
    // under names of their own (benchScenario), each a new tool's whole cycle.
    const need = i === 0 ? 'count the words in a text' : `count the words, bench copy b${i}`;
    const t = await timed(stack, 'forgeWorkflow', `bench-forge-${i}-${Date.now()}`, [
      { need, sandboxQueue: stack.cfg.FORGE_SANDBOX_QUEUE },
    ]);
    const outcome = t.result as { status: string; reason?: string };
    if (outcome.status !== 'registered') throw new Error(`bench forge ${i} did not register: ${outcome.reason}`);
    runs.push({ ...t, systemMs: t.wallMs - t.modelMs, verifyMs: t.steps.sandboxVerify ?? 0 });
    process.stderr.write(`[bench:cycles] forge ${i}: ${round(t.wallMs)} ms wall, ${round(t.modelMs)} ms model\n`);
  }
  const orchestration = orchestrationOf(runs);
  // Tokens per forge cycle, as metered (llm_calls: the scripted model reports usage like the API,
  // prompt caching included), and the share of input sent as cached prefixes (cache-eligible).
  const [tok] = await stack.db.sql<{ input: number; created: number; read: number; output: number; cost: number }[]>`
    select coalesce(sum(input_tokens), 0)::float8 / ${runs.length} as input, coalesce(sum(cache_creation_tokens), 0)::float8 / ${runs.length} as created,
           coalesce(sum(cache_read_tokens), 0)::float8 / ${runs.length} as read, coalesce(sum(output_tokens), 0)::float8 / ${runs.length} as output,
           coalesce(sum(cost_usd), 0)::float8 / ${runs.length} as cost
    from llm_calls where workflow_id = any(${runs.map((r) => r.workflowId)}::text[])`;
  const tokens = {
    input: Math.round(tok?.input ?? 0),
    cacheWrite: Math.round(tok?.created ?? 0),
    cacheRead: Math.round(tok?.read ?? 0),
    output: Math.round(tok?.output ?? 0),
    costUsd: round(tok?.cost ?? 0, 4),
    cacheEligibleShare: round(
      ((tok?.created ?? 0) + (tok?.read ?? 0)) / Math.max(1, (tok?.input ?? 0) + (tok?.created ?? 0) + (tok?.read ?? 0)),
      2,
    ),
  };
  const wall = summary(runs.map((r) => r.wallMs));
  const system = summary(runs.map((r) => r.systemMs));
  const model = summary(runs.map((r) => r.modelMs));
  const verify = summary(runs.map((r) => r.verifyMs));
  report(
    'cycles',
    'forge-cycle',
    `forge cycle (count_words, scripted model), ${runs.length} runs: system time = wall − model; per step: activity scheduled → closed`,
    ['', 'p50 ms', 'p95 ms'],
    [
      ['wall clock', wall.p50, wall.p95],
      ['model (timed at the proxy)', model.p50, model.p95],
      ['system time', system.p50, system.p95],
      ['  baseline: sandboxVerify alone', verify.p50, verify.p95],
      ...stepRows(runs, { orchestration }).map(([label, ...rest]) => [`  ${label}`, ...rest]),
      tripsRow(runs),
      [
        'tokens per cycle (mean): input / cache write / cache read / output',
        `${tokens.input} / ${tokens.cacheWrite} / ${tokens.cacheRead} / ${tokens.output}`,
        `$${tokens.costUsd}, ${Math.round(tokens.cacheEligibleShare * 100)} % cache-eligible`,
      ],
    ],
    {
      runs: runs.length,
      tokens,
      wallMs: wall,
      modelMs: model,
      systemMs: system,
      verifyMs: verify,
      steps: stepRows(runs, { orchestration }),
      trips: tripsRow(runs).slice(1),
    },
  );
}

async function taskFigure(stack: Stack) {
  const one: (Timing & { beyondMs: number; sandboxMs: number })[] = [];
  const none: (Timing & { beyondMs: number })[] = [];
  const texts = ['the quick brown fox', 'a rose is a rose', 'to be or not to be', 'hello brave new world', 'one two three four five'];
  for (let i = 0; i < tasks; i++) {
    const text = `${texts[i % texts.length]} ${i}`;
    const t = await timed(stack, 'taskWorkflow', `bench-task-${i}-${Date.now()}`, [
      { task: `how many words are in "${text}"?`, sandboxQueue: stack.cfg.FORGE_SANDBOX_QUEUE },
    ]);
    const result = t.result as { status: string; calls: { tool: string }[] };
    if (result.status !== 'completed' || !result.calls.some((c) => c.tool === 'count_words'))
      throw new Error(`bench task ${i} did not call count_words: ${JSON.stringify(result).slice(0, 300)}`);
    const sb = await sandboxMs(stack, t.workflowId);
    one.push({ ...t, sandboxMs: sb, beyondMs: t.wallMs - t.modelMs - sb });
    // baseline: a task the model answers in words, no tool, no discovery hit to call
    const b = await timed(stack, 'taskWorkflow', `bench-task-none-${i}-${Date.now()}`, [
      { task: `say hello to the bench, run ${i}`, sandboxQueue: stack.cfg.FORGE_SANDBOX_QUEUE },
    ]);
    none.push({ ...b, beyondMs: b.wallMs - b.modelMs });
  }
  const beyond = summary(one.map((r) => r.beyondMs));
  const base = summary(none.map((r) => r.beyondMs));
  report(
    'cycles',
    'task-one-call',
    `task with one tool call (count_words), ${one.length} runs: system time beyond the model and the sandbox job, vs a task answered without a call`,
    ['', 'p50 ms', 'p95 ms'],
    [
      ['wall clock', summary(one.map((r) => r.wallMs)).p50, summary(one.map((r) => r.wallMs)).p95],
      ['model (timed at the proxy)', summary(one.map((r) => r.modelMs)).p50, summary(one.map((r) => r.modelMs)).p95],
      ['sandbox job (metered latency)', summary(one.map((r) => r.sandboxMs)).p50, summary(one.map((r) => r.sandboxMs)).p95],
      ['system time beyond both', beyond.p50, beyond.p95],
      ['  baseline: task without a call', base.p50, base.p95],
      ['  the call costs (p50 difference)', round(beyond.p50 - base.p50), ''],
      ...stepRows(one, { orchestration: orchestrationOf(one) }).map(([label, ...rest]) => [`  ${label}`, ...rest]),
      tripsRow(one),
      ['  baseline: task without a call, round trips', ...tripsRow(none).slice(1)],
    ],
    {
      runs: one.length,
      wallMs: summary(one.map((r) => r.wallMs)),
      modelMs: summary(one.map((r) => r.modelMs)),
      sandboxMs: summary(one.map((r) => r.sandboxMs)),
      beyondMs: beyond,
      baselineNoCallMs: base,
      activities: Object.keys(one[0]?.steps ?? {}).length,
      steps: stepRows(one, { orchestration: orchestrationOf(one) }),
      trips: tripsRow(one).slice(1),
      baselineTrips: tripsRow(none).slice(1),
    },
  );
}

async function concurrentFigure(stack: Stack) {
  if (concurrent === 0) return;
  // baseline: the same task alone
  const alone = await timed(stack, 'taskWorkflow', `bench-alone-${Date.now()}`, [
    { task: 'how many words are in "one task alone"?', sandboxQueue: stack.cfg.FORGE_SANDBOX_QUEUE },
  ]);
  const cpu0 = cpuByComponent();
  const tot0 = totalCpuMs();
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: concurrent }, async (_, i) => {
      const t0 = performance.now();
      try {
        const handle = await stack.client.workflow.start('taskWorkflow', {
          taskQueue: stack.cfg.FORGE_TASK_QUEUE,
          workflowId: `bench-many-${i}-${Date.now()}`,
          args: [{ task: `how many words are in "concurrent task number ${i}"?`, sandboxQueue: stack.cfg.FORGE_SANDBOX_QUEUE }],
        });
        const r = (await handle.result()) as { status: string; calls: { tool: string; status: string }[] };
        const ok = r.status === 'completed' && r.calls.some((c) => c.tool === 'count_words' && c.status === 'succeeded');
        return { ms: performance.now() - t0, ok, why: ok ? '' : `${r.status}` };
      } catch (err) {
        return { ms: performance.now() - t0, ok: false, why: (err as Error).message.slice(0, 120) };
      }
    }),
  );
  const wallMs = performance.now() - started;
  const cpu1 = cpuByComponent();
  const tot1 = totalCpuMs();
  const cpu: Record<string, number> = Object.fromEntries(Object.keys(cpu1).map((k) => [k, round((cpu1[k]! - (cpu0[k] ?? 0)) / 1000, 1)]));
  const busy = (tot1.busy - tot0.busy) / (tot1.all - tot0.all);
  // Sandbox containers live for one job: their CPU is what the machine spent beyond the long-lived
  // components (with whatever else runs on the machine — its load average is in the JSON line).
  cpu['sandbox containers + rest of machine'] = round((tot1.busy - tot0.busy) / 1000 - Object.values(cpu).reduce((a, b) => a + b, 0), 1);
  const failures = results.filter((r) => !r.ok);
  const lat = summary(results.map((r) => r.ms));
  const top = Object.entries(cpu).sort((a, b) => b[1] - a[1])[0]!;
  report(
    'cycles',
    'concurrent-tasks',
    `${concurrent} concurrent tasks (one count_words call each) on ${machine().cpus} cores, vs one task alone`,
    ['', 'value'],
    [
      ['tasks', concurrent],
      ['failures', failures.length],
      ['wall clock s', round(wallMs / 1000, 1)],
      ['throughput tasks/s', round((concurrent * 1000) / wallMs, 2)],
      ['task p50 ms', lat.p50],
      ['task p95 ms', lat.p95],
      ['baseline: one task alone ms', round(alone.wallMs)],
      ['machine CPU busy', `${round(busy * 100, 0)} %`],
      ...Object.entries(cpu).map(([k, v]) => [`CPU s: ${k}`, v]),
      ['bottleneck', busy > 0.9 ? `CPU (most: ${top[0]})` : `not CPU (${round(busy * 100, 0)} % busy): waits — most CPU: ${top[0]}`],
    ],
    {
      tasks: concurrent,
      failures: failures.length,
      failureReasons: [...new Set(failures.map((f) => f.why))].slice(0, 5),
      wallMs: round(wallMs),
      tasksPerSec: round((concurrent * 1000) / wallMs, 2),
      taskMs: lat,
      p99: round(
        percentile(
          results.map((r) => r.ms),
          99,
        ),
      ),
      aloneMs: round(alone.wallMs),
      cpuBusy: round(busy, 2),
      loadavg: machine().loadavg,
      cpuSeconds: cpu,
    },
  );
}

/** forge-word-count.json's count_words, as count_words_<copy>: the same cycle for a tool of another name. */
function benchScenario(): ScenarioInput {
  const bundled = JSON.parse(fs.readFileSync(path.join('scenarios', 'forge-word-count.json'), 'utf8')) as ScenarioInput;
  const rules = bundled.rules
    .filter((r) => r.name?.startsWith('count_words'))
    .map((r) => {
      const spec = r.match?.purpose === 'forge.spec';
      const user = spec ? '/<need>\\n[^\\n]*count the words, bench copy ([a-z0-9]+)/i' : '/^Tool: count_words_([a-z0-9]+)$/m';
      const responses = JSON.parse(JSON.stringify(r.responses).replaceAll('count_words', 'count_words_{{user.1}}'));
      return { ...r, name: `bench copy: ${r.name}`, match: { ...r.match, user }, responses };
    });
  return { name: 'bench-copies', rules } as ScenarioInput;
}

const stack = await startStack({ database, scenarios: [benchScenario()] });
try {
  process.stdout.write(`cycles bench: ${JSON.stringify(machine())}, database ${database}\n`);
  if (forges > 0) await forgeFigure(stack);
  if (tasks > 0) await taskFigure(stack);
  await concurrentFigure(stack);
} finally {
  await stack.close();
}
process.exit(0);
