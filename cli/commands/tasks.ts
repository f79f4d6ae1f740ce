import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { workflowUiUrl } from '../../app/cycles.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { listTasks, showTask, type TaskView, taskToFollow } from '../../app/tasks.ts';
import { clipLine, missingArgument, printJson, say, usageError } from '../output.ts';
import { callLines, followAndReport, reportTaskResult } from './task-output.ts';

const USAGE = 'usage: forge tasks [ls] [--limit n] [--json] | forge tasks show <id> [--wait] [--json]';

/**
 * `forge tasks ls` and `forge tasks show <id> [--wait]`: a task started without --wait (or from
 * MCP, or by another person), seen or followed later, reading as `forge run --wait` would have.
 */
export async function tasksCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      limit: { type: 'string', default: '20' },
    },
  });
  const [sub = 'ls', id, ...extra] = positionals;
  if (sub !== 'show' && sub !== 'ls') throw usageError(`unknown tasks command ${JSON.stringify(sub)}`, USAGE);
  if ((sub === 'ls' && id !== undefined) || extra.length)
    throw usageError(`unexpected argument ${JSON.stringify(sub === 'ls' ? id : extra[0])}`, USAGE);
  if (sub === 'ls') {
    if (values.wait) throw usageError('--wait follows one task: forge tasks show <id> --wait', USAGE);
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidInputError('--limit', `${JSON.stringify(values.limit)} is not a whole number from 1 to 1000`);
    return withSession(cfg, (session) => listCommand(session, limit, values.json));
  }
  if (id === undefined) throw missingArgument('tasks show', 'the id of the task (forge run printed it; forge tasks lists them)', USAGE);
  return withSession(cfg, async (session) => {
    const view = await showTask(session, id);
    const extra = view.sessionId ? { sessionId: view.sessionId } : {};
    if (values.wait && view.result) {
      // Already over: what following it would have ended with.
      if (!values.json) say(headLine(view));
      return reportTaskResult(session, view.result, { json: values.json, uiUrl: view.uiUrl, extra });
    }
    if (values.wait) {
      // Running, or ended without a result (terminated, failed on a model nobody could reach …):
      // followed as forge run --wait follows it, to the same words, fix and exit code.
      if (!values.json) say(headLine(view));
      return followAndReport(session, await taskToFollow(session, view), { json: values.json, extra });
    }
    if (values.json) printJson({ ok: true, task: view });
    else printTask(session.cfg, view);
    // Without --wait the task was shown, however it stands.
    return 0;
  });
}

async function listCommand(session: Parameters<typeof listTasks>[0], limit: number, json: boolean): Promise<number> {
  const { tasks, total } = await listTasks(session, { limit });
  if (json) printJson({ ok: true, tasks, total });
  else if (!tasks.length) say('no tasks yet: start one with  forge run "<task>"');
  else {
    for (const t of tasks) say(`${t.workflowId.padEnd(30)} ${t.status.padEnd(10)} ${t.createdAt ?? ''}  ${clipLine(t.task, 70)}`);
    if (total > tasks.length) say(`(${total - tasks.length} older tasks not shown: --limit ${total})`);
    say('one task: forge tasks show <id> [--wait]');
  }
  return 0;
}

/** The task's first line: its id, its session place, what it asked; its UI link under it. */
function headLine(v: TaskView): string {
  const where = v.sessionId ? ` (session ${v.sessionId}${v.position ? `, #${v.position}` : ''})` : '';
  return `task ${v.workflowId}${where}: ${clipLine(v.task, 200)}${v.uiUrl ? `\n  ${v.uiUrl}` : ''}`;
}

/** A task as it stands: its result as `forge run --wait` prints it, why it ended without one, or where it is now. */
function printTask(cfg: ForgeConfig, v: TaskView): void {
  say(headLine(v));
  if (v.result) {
    const r = v.result;
    say(`${r.status}${r.stoppedBy ? ` (${r.stoppedBy})` : ''}\n${r.answer}`);
    for (const line of callLines(r.calls, (id) => workflowUiUrl(cfg, id))) say(line);
    return;
  }
  if (v.status !== 'running') {
    say(`${v.status}\n${v.error ?? '(no reason recorded)'}`);
    return;
  }
  const p = v.progress;
  if (!p)
    say('running — not begun: no worker has picked it up yet (if that lasts, forge doctor says whether one is up; forge up starts one)');
  else {
    say(`running — ${p.phase}${p.turn ? ` (turn ${p.turn})` : ''}`);
    if (p.pendingApproval)
      say(
        `waits for a person${p.waitingIn ? ` (in ${p.waitingIn.workflowId})` : ''}: forge approve ${p.pendingApproval}  |  forge reject ${p.pendingApproval}`,
      );
    if (p.calls.length) for (const line of callLines(p.calls, (id) => workflowUiUrl(cfg, id))) say(line);
  }
  say(`follow it: forge tasks show ${v.workflowId} --wait`);
}
