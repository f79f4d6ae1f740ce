import { parseArgs } from 'node:util';
import { type ForgeBudgetToday, forgeBudgetToday } from '../../app/budget.ts';
import { type ForgeConfig, localUser } from '../../app/context.ts';
import { freeze, type ReapCounts, thawForge } from '../../app/control.ts';
import { printJson, say } from '../output.ts';

// The kill switch and the forge budget: they work while Forge is frozen.

const jsonFlag = { json: { type: 'boolean' as const, default: false } };

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * What freezing did to the sandboxes, in words, with the numbers: the containers started for a job
 * are the ones it killed; the warm pool's are told apart, since the pool starts new ones right
 * after a freeze (idle: no job runs while frozen), and a repeated freeze that removes those has
 * killed nothing that was running.
 */
export function sandboxesLine(s: ReapCounts, alreadyFrozen: boolean): string {
  const warm = !s.warmPool
    ? ''
    : alreadyFrozen
      ? `; removed ${count(s.warmPool, 'idle warm-pool container', 'idle warm-pool containers')} the pool started since (no job runs while frozen)`
      : ` and ${count(s.warmPool, 'warm-pool container', 'warm-pool containers')} (idle, or running a job handed to it)`;
  const stopped = s.stopped ? `; removed ${count(s.stopped, 'stopped sandbox container', 'stopped sandbox containers')}` : '';
  return `killed ${count(s.jobs, 'sandbox', 'sandboxes')} started for a job${warm}${stopped}`;
}

export async function freezeCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...jsonFlag, reason: { type: 'string' } } });
  const by = localUser();
  const { killedSandboxes, sandboxes, alreadyFrozen: was } = await freeze(cfg, by, values.reason);
  if (values.json)
    printJson({
      ok: true,
      frozen: true,
      changed: !was,
      by: was?.by ?? by,
      ...(was ? { since: was.since, reason: was.reason } : {}),
      killedSandboxes,
      sandboxes,
    });
  else if (was)
    say(
      `Forge was already frozen${was.by ? ` by ${was.by}` : ''}${was.since ? ` since ${was.since}` : ''}${was.reason ? ` (${was.reason})` : ''}: nothing changed; ${sandboxesLine(sandboxes, true)}. Resume with: forge thaw`,
    );
  else
    say(
      `Forge is frozen: side effects are refused; ${sandboxesLine(sandboxes, false)}. Read-only commands still work. Resume with: forge thaw`,
    );
  return 0;
}

export async function thawCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const by = localUser();
  const { wasFrozen } = await thawForge(cfg, by);
  if (values.json) printJson({ ok: true, frozen: false, changed: wasFrozen, by });
  else if (!wasFrozen) say('Forge was not frozen: nothing changed.');
  else say('Forge is thawed: waiting workflows resume within seconds.');
  return 0;
}

export async function budgetCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const budget = await forgeBudgetToday(cfg);
  if (values.json) printJson({ ok: true, ...budget });
  else for (const line of budgetLines(budget)) say(line);
  return 0;
}

/** `forge budget` as text: the count, then each forge run of the day, whether it counted and what it cost. */
export function budgetLines(budget: ForgeBudgetToday): string[] {
  return [
    `forge budget: ${budget.usedToday} of ${budget.limit} new tools used today (UTC); past that, forging waits for a person (forge approvals, then forge approve <id>)`,
    ...budget.runs.map(
      (r) =>
        `  ${r.workflow_id}: ${r.name ?? '(unnamed)'} ${r.status}${r.counted ? '' : ' (not counted)'}; tokens: ${r.input_tokens} in + ${r.cache_read_tokens} cached + ${r.cache_write_tokens} cache-write, ${r.output_tokens} out, ~$${r.cost_usd.toFixed(4)}`,
    ),
    ...(budget.costNote && budget.runs.length ? [`  (${budget.costNote})`] : []),
  ];
}
