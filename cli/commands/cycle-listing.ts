import { parseArgs } from 'node:util';
import type { KillSwitchState } from '../../app/control.ts';
import { joinDashedNumbers, limitOption, refuseListingOptions } from '../args.ts';
import { clipLine, missingArgument, usageError } from '../output.ts';

/**
 * What `forge tasks`, `forge forges` and `forge improve ls|show` share: one command line (`[ls] [--limit n]` or
 * `show <id> [--wait]`), one list layout, and the lines a cycle shown by its id reads with, so a
 * forge started without --wait is seen and re-attached to exactly as a task is.
 */

export type CycleCommandLine = { sub: 'ls'; limit: number; json: boolean } | { sub: 'show'; id: string; wait: boolean; json: boolean };

/** Parses `forge <command> [ls] [--limit n] [--json] | forge <command> show <id> [--wait] [--json]`. */
export function parseCycleCommand(
  args: string[],
  command: { name: string; noun: string; idHint: string; usage: string },
): CycleCommandLine {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(args, ['--limit']),
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      limit: { type: 'string' },
    },
  });
  const { usage } = command;
  const [sub = 'ls', id, ...extra] = positionals;
  if (sub !== 'show' && sub !== 'ls') throw usageError(`unknown ${command.name} command ${JSON.stringify(sub)}`, usage);
  if ((sub === 'ls' && id !== undefined) || extra.length)
    throw usageError(`unexpected argument ${JSON.stringify(sub === 'ls' ? id : extra[0])}`, usage);
  if (sub === 'ls') {
    if (values.wait) throw usageError(`--wait follows one ${command.noun}: forge ${command.name} show <id> --wait`, usage);
    return { sub, limit: limitOption(values.limit, 20, usage), json: values.json };
  }
  if (id === undefined) throw missingArgument(`${command.name} show`, `the id of the ${command.noun} (${command.idHint})`, usage);
  refuseListingOptions(values, ['limit'], { listing: `forge ${command.name} [ls]`, sub: 'show' }, usage);
  return { sub, id, wait: values.wait, json: values.json };
}

/** A listing's row: the cycle's id, its status, when it started, what was asked. */
export interface CycleRow {
  workflowId: string;
  status: string;
  createdAt?: string;
  /** a listing's own column before the last (an improve cycle's attempts) */
  extra?: string;
  text: string;
}

/**
 * Recent cycles, newest first, one line each under a header row (as forge tools ls has); the older
 * ones left out and how to show one said under them. `what` names the last column, `extra` the
 * listing's own column before it, if any; the id column is as wide as its longest id.
 */
export function cycleRowLines(
  rows: CycleRow[],
  total: number,
  listing: { plural: string; what: string; empty: string; showOne: string; extra?: string },
): string[] {
  if (!rows.length) return [listing.empty];
  const idWidth = Math.max(30, ...rows.map((r) => r.workflowId.length));
  const extraWidth = listing.extra ? Math.max(listing.extra.length, ...rows.map((r) => (r.extra ?? '').length)) : 0;
  const row = (id: string, status: string, started: string, extra: string | undefined, text: string) =>
    `${id.padEnd(idWidth)} ${status.padEnd(10)} ${started.padEnd(24)}  ${listing.extra ? `${(extra ?? '').padEnd(extraWidth)}  ` : ''}${text}`.trimEnd();
  return [
    row('id', 'status', 'started', listing.extra, listing.what),
    ...rows.map((r) => row(r.workflowId, r.status, r.createdAt ?? '', r.extra, clipLine(r.text, 70))),
    ...(total > rows.length ? [`(${total - rows.length} older ${listing.plural} not shown: --limit ${total})`] : []),
    listing.showOne,
  ];
}

/** A cycle's first line: what it is, its id, where it sits, what it was asked; its UI link under it. */
export function cycleHeadLine(noun: string, workflowId: string, text: string, uiUrl: string | null, where = ''): string {
  return `${noun} ${workflowId}${where}: ${clipLine(text, 200)}${uiUrl ? `\n  ${uiUrl}` : ''}`;
}

/** A cycle Temporal has that no worker has picked up yet. */
export const NOT_BEGUN =
  'running — not begun: no worker has picked it up yet (if that lasts, forge doctor says whether one is up; forge up starts one)';

/** What a running cycle waits for a person about (`why`, when said), and the commands that decide it. */
export function waitsForPersonLine(pendingApproval: string, waitingIn?: { workflowId: string }, why?: string): string {
  return `waits for a person${waitingIn ? ` (in ${waitingIn.workflowId})` : ''}${why ? ` — ${why}` : ''}: forge approve ${pendingApproval}  |  forge reject ${pendingApproval}`;
}

/**
 * A frozen Forge, beside a cycle it holds: who froze it, since when, why, and the command that
 * resumes. Every side effect (a model call, a sandbox run, a registration) is refused while
 * frozen, so the cycle waits; a cycle that ended is not held and is not told this.
 */
export function frozenLine(state: KillSwitchState, noun: string): string {
  const who = [state.by ? `by ${state.by}` : '', state.since ? `since ${state.since}` : ''].filter(Boolean).join(' ');
  return `Forge is frozen${who ? ` ${who}` : ''}${state.reason ? ` (${state.reason})` : ''}: this ${noun} waits until it is thawed — forge thaw`;
}

/** The kill switch's words for --json output: who froze Forge, since when and why. */
export const frozenJson = (state: KillSwitchState) => ({ by: state.by ?? null, since: state.since ?? null, reason: state.reason ?? null });

/** How to follow a cycle shown while it runs. */
export const followLine = (command: string, workflowId: string): string => `follow it: forge ${command} show ${workflowId} --wait`;
