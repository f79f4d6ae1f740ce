import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { workflowUiUrl } from '../../app/cycles.ts';
import { followTask, startTask, taskLimitRanges } from '../../app/tasks.ts';
import { wholeNumberOption, withUsage } from '../args.ts';
import { missingArgument, printJson, reportCycleFailure, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';

type Calls = Extract<Awaited<ReturnType<typeof followTask>>, { ok: true }>['result']['calls'];

/** What the task did about a failed call: retries, the diagnosis, the repair (with its cycle's UI link) or the escalation. */
function recoveryLines(c: Calls[number], link: (workflowId: string) => string | null): string[] {
  const r = c.recovery;
  if (!r) return [];
  const lines: string[] = [];
  if (r.retries) lines.push(`retried ${r.retries} time(s): the failure looked transient`);
  if (r.diagnosis)
    lines.push(`diagnosis (${r.diagnosis.atFault} at fault${r.diagnosis.fixable ? ', fixable' : ''}): ${r.diagnosis.diagnosis}`);
  if (r.repair) {
    const url = link(r.repair.workflowId);
    lines.push(
      `repair ${r.repair.workflowId}: ${r.repair.status}${r.repair.toVersion ? ` → v${r.repair.toVersion}` : ''}${url ? `  ${url}` : ''}`,
    );
  }
  if (r.escalation) lines.push(`escalated to a person (approval ${r.escalation.approvalId ?? '?'}): ${r.escalation.decision}`);
  return lines.map((l) => `       ↳ ${l}`);
}

/** The calls the agent made, one line each: the chain a person checks the answer against. */
function callLines(calls: Calls, link: (workflowId: string) => string | null): string[] {
  if (!calls.length) return ['calls: none'];
  return [
    'calls:',
    ...calls.flatMap((c) => {
      const head = `  ${c.turn}. ${c.tool}${c.version ? ` v${c.version}` : ''} ${JSON.stringify(c.input).slice(0, 100)}`;
      const line =
        c.status === 'succeeded'
          ? `${head} → ${JSON.stringify(c.output ?? null).slice(0, 100)}`
          : `${head} → ${c.status}: ${c.reason ?? ''}`;
      return [line, ...recoveryLines(c, link)];
    }),
  ];
}

const USAGE = 'usage: forge run "<task>" [--session id] [--wait] [--json] [--max-turns n] [--max-tool-calls n] [--max-tokens n]';

const LIMIT_OPTIONS = { maxTurns: 'max-turns', maxToolCalls: 'max-tool-calls', maxTokens: 'max-tokens' } as const;

/**
 * The loop's bounds a person set on the command line; absent ones keep their defaults. Checked here,
 * option by option, so a bad value is named by its option (`--max-turns "abc"`), not as the task.
 */
export function limitsFrom(values: { 'max-turns'?: string; 'max-tool-calls'?: string; 'max-tokens'?: string }) {
  const ranges = taskLimitRanges();
  const limits: { maxTurns?: number; maxToolCalls?: number; maxTokens?: number } = {};
  for (const [key, option] of Object.entries(LIMIT_OPTIONS) as [
    keyof typeof LIMIT_OPTIONS,
    (typeof LIMIT_OPTIONS)[keyof typeof LIMIT_OPTIONS],
  ][]) {
    const text = values[option];
    if (text !== undefined) limits[key] = wholeNumberOption(`--${option}`, text, ranges[key], USAGE);
  }
  return Object.keys(limits).length ? limits : undefined;
}

export async function runCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'max-turns': { type: 'string' },
      'max-tool-calls': { type: 'string' },
      'max-tokens': { type: 'string' },
      session: { type: 'string' },
    },
  });
  const task = positionals.join(' ').trim();
  if (!task)
    throw missingArgument(
      'run',
      'a task: what the agent should do, in words (e.g. forge run "how many words are in \'a rose is a rose\'?")',
      USAGE,
    );
  const limits = limitsFrom(values);
  return withSession(cfg, async (session) => {
    const started = await withUsage(startTask(session, task, limits, values.session), USAGE);
    const { workflowId, uiUrl } = started;
    const inSession = values.session ? { sessionId: values.session } : {};
    const startedLine = `started ${workflowId}${values.session ? ` in session ${values.session}` : ''}${uiUrl ? `\n  ${uiUrl}` : ''}`;
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, runId: started.runId, uiUrl, ...inSession });
      else say(startedLine);
      return 0;
    }
    if (!values.json) say(startedLine);
    const print = progressPrinter();
    const end = await followTask(session, started, {
      onProgress: values.json ? undefined : print,
      onNoWorker: (queue) => {
        print.stop();
        process.stderr.write(`warning: no worker polls ${queue}; the task waits until one does (run: forge up)\n`);
      },
    });
    print.stop();
    if (end.ok) {
      const { result } = end;
      const ok = result.status === 'completed';
      if (values.json) printJson({ ok, workflowId: result.workflowId, uiUrl, ...inSession, status: result.status, result });
      else {
        say(`${result.status}${result.stoppedBy ? ` (${result.stoppedBy})` : ''}\n${result.answer}`);
        for (const line of callLines(result.calls, (id) => workflowUiUrl(cfg, id))) say(line);
      }
      // A task whose call failed, or that a bound stopped, did not do what was asked.
      return ok ? 0 : 1;
    }
    return reportCycleFailure(values.json, started, end.error, { ...inSession, status: 'failed' });
  });
}
