import { type ForgeConfig, withSession } from '../../app/context.ts';
import { frozenNow, type KillSwitchState } from '../../app/control.ts';
import { workflowUiUrl } from '../../app/cycles.ts';
import { listTasks, showTask, type TaskView, taskToFollow } from '../../app/tasks.ts';
import { printJson, say } from '../output.ts';
import {
  cycleHeadLine,
  cycleRowLines,
  followLine,
  frozenJson,
  frozenLine,
  NOT_BEGUN,
  parseCycleCommand,
  waitsForPersonLine,
} from './cycle-listing.ts';
import { callLines, followAndReport, reportTaskResult, statusLine } from './task-output.ts';

const USAGE = 'usage: forge tasks [ls] [--limit n] [--json] | forge tasks show <id> [--wait] [--json]';

/**
 * `forge tasks ls` and `forge tasks show <id> [--wait]`: a task started without --wait (or from
 * MCP, or by another person), seen or followed later, reading as `forge run --wait` would have.
 */
export async function tasksCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const line = parseCycleCommand(args, {
    name: 'tasks',
    noun: 'task',
    idHint: 'forge run printed it; forge tasks lists them',
    usage: USAGE,
  });
  if (line.sub === 'ls') return withSession(cfg, (session) => listCommand(session, line.limit, line.json));
  const { id, json, wait } = line;
  return withSession(cfg, async (session) => {
    const view = await showTask(session, id);
    const extra = view.sessionId ? { sessionId: view.sessionId } : {};
    if (wait && view.result) {
      // Already over: what following it would have ended with.
      if (!json) say(headLine(view));
      return reportTaskResult(session, view.result, { json, uiUrl: view.uiUrl, extra });
    }
    if (wait) {
      // Running, or ended without a result (terminated, failed on a model nobody could reach …):
      // followed as forge run --wait follows it, to the same words, fix and exit code.
      if (!json) say(headLine(view));
      return followAndReport(session, await taskToFollow(session, view), { json, extra });
    }
    // A task still running waits while Forge is frozen: said beside it.
    const frozen = view.status === 'running' ? await frozenNow(cfg) : undefined;
    if (json) printJson({ ok: true, task: view, ...(frozen ? { frozen: frozenJson(frozen) } : {}) });
    else printTask(session.cfg, view, frozen);
    // Without --wait the task was shown, however it stands.
    return 0;
  });
}

async function listCommand(session: Parameters<typeof listTasks>[0], limit: number, json: boolean): Promise<number> {
  const { tasks, total } = await listTasks(session, { limit });
  if (json) printJson({ ok: true, tasks, total });
  else
    say(
      cycleRowLines(
        tasks.map((t) => ({ ...t, text: t.task })),
        total,
        {
          plural: 'tasks',
          what: 'task',
          empty: 'no tasks yet: start one with  forge run "<task>"',
          showOne: 'one task: forge tasks show <id> [--wait]',
        },
      ).join('\n'),
    );
  return 0;
}

/** The task's first line: its id, its session place, what it asked; its UI link under it. */
function headLine(v: TaskView): string {
  const where = v.sessionId ? ` (session ${v.sessionId}${v.position ? `, #${v.position}` : ''})` : '';
  return cycleHeadLine('task', v.workflowId, v.task, v.uiUrl, where);
}

/** A task as it stands: its result as `forge run --wait` prints it, why it ended without one, or where it is now. */
function printTask(cfg: ForgeConfig, v: TaskView, frozen?: KillSwitchState): void {
  say(headLine(v));
  if (v.result) {
    const r = v.result;
    say(`${statusLine(r)}\n${r.answer}`);
    for (const line of callLines(r.calls, (id) => workflowUiUrl(cfg, id))) say(line);
    return;
  }
  if (v.status !== 'running') {
    say(`${v.status}\n${v.error ?? '(no reason recorded)'}`);
    return;
  }
  const p = v.progress;
  if (!p) say(NOT_BEGUN);
  else {
    say(`running — ${p.phase}${p.turn ? ` (turn ${p.turn})` : ''}`);
    if (p.pendingApproval) say(waitsForPersonLine(p.pendingApproval, p.waitingIn));
    if (p.calls.length) for (const line of callLines(p.calls, (id) => workflowUiUrl(cfg, id))) say(line);
  }
  if (frozen) say(frozenLine(frozen, 'task'));
  say(followLine('tasks', v.workflowId));
}
