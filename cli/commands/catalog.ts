import { parseArgs } from 'node:util';
import { decideApproval, pendingApprovalList } from '../../app/approvals.ts';
import { forgeBudgetToday } from '../../app/budget.ts';
import { listTools, showTool, toolHistory } from '../../app/catalog.ts';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { freeze, thaw } from '../../app/control.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { printJson, say } from '../output.ts';

// Read-only and human-in-the-loop commands: they work while Forge is frozen.

const jsonFlag = { json: { type: 'boolean' as const, default: false } };

export async function toolsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
  const [sub = 'ls', name] = positionals;
  if (sub === 'ls') {
    const tools = await listTools(cfg);
    if (values.json) printJson({ ok: true, tools });
    else if (!tools.length) say('no tools yet: forge one with  forge forge "<what the tool must do>"');
    else
      for (const t of tools)
        say(
          `${t.name.padEnd(28)} v${t.currentVersion ?? '-'}  ${t.status.padEnd(11)} ${t.stats.level.padEnd(12)} ${t.sideEffect.padEnd(5)} ${t.stats.invocations} calls  ${t.description.slice(0, 60)}`,
        );
    return 0;
  }
  if (!name) throw new InvalidInputError('command', `usage: forge tools ${sub} <name> [--json]`);
  if (sub === 'show') {
    const details = await showTool(cfg, name);
    if (values.json) printJson({ ok: true, tool: details });
    else {
      say(`${details.name} v${details.currentVersion ?? '-'} (${details.status}, trust ${details.stats.level})`);
      say(`  ${details.description}`);
      say(`  side effect: ${details.sideEffect}${details.destructive ? ', destructive' : ''}`);
      say(
        `  permissions: network ${JSON.stringify(details.manifest?.permissions.network ?? [])}, env ${JSON.stringify(details.manifest?.permissions.env ?? [])}`,
      );
      say(
        `  calls: ${details.stats.invocations}, success ${(details.stats.successRate * 100).toFixed(0)}%, avg ${details.stats.avgLatencyMs ?? '-'} ms`,
      );
      say(`  folder: ${details.dir ?? '-'}`);
    }
    return 0;
  }
  if (sub === 'history') {
    const history = await toolHistory(cfg, name);
    if (values.json) printJson({ ok: true, name, history });
    else
      for (const h of history) {
        say(
          `v${h.version} ${h.current ? '(current) ' : ''}${h.status} by ${h.createdBy} at ${new Date(h.createdAt).toISOString()} ${h.onDisk !== 'same' ? `[on disk: ${h.onDisk}]` : ''}`,
        );
        if (h.diff) say(h.diff.replace(/^/gm, '    '));
      }
    return 0;
  }
  throw new InvalidInputError('command', `unknown tools command ${JSON.stringify(sub)}: use ls, show <name> or history <name>`);
}

export async function approvalsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const pending = await pendingApprovalList(cfg);
  if (values.json) printJson({ ok: true, pending });
  else if (!pending.length) say('nothing waits for approval');
  else
    for (const a of pending) {
      say(`${a.id}\n    ${a.kind}${a.tool ? ` ${a.tool}` : ''}: ${a.summary}`);
      if (a.kind === 'question') say(`    answer with: forge answer ${a.id} "<your answer>"   (or decline: forge reject ${a.id})`);
    }
  return 0;
}

export function decideCommand(approve: boolean) {
  return async (cfg: ForgeConfig, args: string[]): Promise<number> => {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
    const [id] = positionals;
    if (!id)
      throw new InvalidInputError(
        'command',
        `usage: forge ${approve ? 'approve' : 'reject'} <approval-id> (list them with: forge approvals)`,
      );
    const by = localUser();
    const decision = await withSession(cfg, (session) => decideApproval(session, { id, approve, by }));
    if (values.json) printJson({ ok: true, ...decision, by });
    else say(`${approve ? 'approved' : 'rejected'} ${id} (workflow ${decision.workflowId})`);
    return 0;
  };
}

/** `forge answer <id> "<text>"`: answers a question the agent asked (ask_person); the task goes on with it. */
export async function answerCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
  const [id, ...words] = positionals;
  const answer = words.join(' ').trim();
  if (!id || !answer)
    throw new InvalidInputError('command', 'usage: forge answer <approval-id> "<your answer>" (list the questions with: forge approvals)');
  const by = localUser();
  const decision = await withSession(cfg, (session) => decideApproval(session, { id, approve: true, by, answer }));
  if (values.json) printJson({ ok: true, ...decision, by, answer });
  else say(`answered ${id} (workflow ${decision.workflowId})`);
  return 0;
}

export async function freezeCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...jsonFlag, reason: { type: 'string' } } });
  const by = localUser();
  const { killedSandboxes: killed } = await freeze(cfg, by, values.reason);
  if (values.json) printJson({ ok: true, frozen: true, by, killedSandboxes: killed });
  else
    say(
      `Forge is frozen: side effects are refused, ${killed} sandbox container(s) killed. Read-only commands still work. Resume with: forge thaw`,
    );
  return 0;
}

export async function thawCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const by = localUser();
  await thaw(cfg, by);
  if (values.json) printJson({ ok: true, frozen: false, by });
  else say('Forge is thawed: waiting workflows resume within seconds.');
  return 0;
}

export async function budgetCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const budget = await forgeBudgetToday(cfg);
  if (values.json) printJson({ ok: true, ...budget });
  else {
    say(
      `forge budget: ${budget.usedToday} of ${budget.limit} new tools used today (UTC); past that, forging waits for  forge approve <id>`,
    );
    for (const r of budget.runs) say(`  ${r.workflow_id}  ${r.name ?? '(unnamed)'}  ${r.status}`);
  }
  return 0;
}
