import { parseArgs } from 'node:util';
import type { ForgeConfig } from '../../app/context.ts';
import { listSessions, showSession } from '../../app/sessions.ts';
import { joinDashedNumbers, limitOption, refuseListingOptions } from '../args.ts';
import { clipLine, missingArgument, printJson, say, usageError } from '../output.ts';

const USAGE = 'usage: forge sessions [ls] [--limit n] [--json] | forge sessions show <id> [--json]';

/** `forge sessions ls` and `forge sessions show <id>`: conversations of tasks (forge run … --session <id>). Work while frozen. */
export async function sessionsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(args, ['--limit']),
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, limit: { type: 'string' } },
  });
  const [sub = 'ls', id, ...extra] = positionals;
  if (sub === 'ls' && id === undefined) {
    const limit = limitOption(values.limit, 50, USAGE);
    const { sessions, total } = await listSessions(cfg, { limit });
    if (values.json) printJson({ ok: true, sessions, total });
    else if (!sessions.length) say('no sessions yet: start one with  forge run "<task>" --session <id>');
    else {
      say(`${'session'.padEnd(24)} ${'tasks'.padEnd(9)}  ${'last'.padEnd(24)}  title`);
      for (const s of sessions)
        say(`${s.id.padEnd(24)} ${String(s.tasks).padStart(3)} task${s.tasks === 1 ? ' ' : 's'}  ${s.updatedAt}  ${clipLine(s.title, 70)}`);
      if (total > sessions.length) say(`(${total - sessions.length} older sessions not shown: --limit ${total})`);
    }
    return 0;
  }
  if (sub !== 'show' && sub !== 'ls') throw usageError(`unknown sessions command ${JSON.stringify(sub)}`, USAGE);
  if (sub === 'ls' || extra.length) throw usageError(`unexpected argument ${JSON.stringify(sub === 'ls' ? id : extra[0])}`, USAGE);
  if (id === undefined) throw missingArgument('sessions show', 'the id of the session (forge sessions ls lists them)', USAGE);
  refuseListingOptions(values, ['limit'], { listing: 'forge sessions [ls]', sub: 'show' }, USAGE);
  const session = await showSession(cfg, id);
  if (values.json) {
    printJson({ ok: true, session });
    return 0;
  }
  say(
    `session ${session.id}: ${session.tasks} task${session.tasks === 1 ? '' : 's'}, started ${session.createdAt}, last ${session.updatedAt}`,
  );
  for (const e of session.entries) {
    say(`  #${e.position} ${e.status.padEnd(10)} ${e.workflowId}  ${clipLine(e.task, 100)}`);
    if (e.calls.length)
      say(
        `      calls: ${e.calls.map((c) => `${c.tool}${c.version ? ` v${c.version}` : ''}${c.status === 'succeeded' ? '' : ` (${c.status})`}`).join(', ')}`,
      );
    if (e.answer !== undefined) say(`      → ${clipLine(e.answer, 200)}`);
  }
  say(`continue it with: forge run "<task>" --session ${session.id} --wait`);
  return 0;
}
