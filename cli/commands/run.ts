import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { workflowUiUrl } from '../../app/cycles.ts';
import { followTask, startTask } from '../../app/tasks.ts';
import { withUsage } from '../args.ts';
import { printJson, say } from '../output.ts';
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

/** The loop's bounds a person set on the command line; absent ones keep their defaults. */
function limitsFrom(values: { 'max-turns'?: string; 'max-tool-calls'?: string; 'max-tokens'?: string }) {
  const n = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const limits = { maxTurns: n(values['max-turns']), maxToolCalls: n(values['max-tool-calls']), maxTokens: n(values['max-tokens']) };
  return Object.values(limits).some((v) => v !== undefined) ? limits : undefined;
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
  return withSession(cfg, async (session) => {
    const started = await withUsage(startTask(session, positionals.join(' '), limitsFrom(values), values.session), USAGE);
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
    if (values.json) printJson({ ok: false, workflowId, uiUrl, status: 'failed', error: end.error });
    else process.stderr.write(`failed: ${end.error}\n`);
    return 1;
  });
}
