import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import {
  type ImproveView,
  improveEnding,
  improveIsOpen,
  improveLedgerEnding,
  improveToFollow,
  listImproves,
  showImprove,
  startImprove,
} from '../../app/improve.ts';
import { joinDashedNumbers, withUsage } from '../args.ts';
import { missingArgument, printJson, say, usageError } from '../output.ts';
import { attemptLabel } from '../progress.ts';
import { cycleHeadLine, cycleRowLines, followLine, NOT_BEGUN, parseCycleCommand } from './cycle-listing.ts';
import { followImproveAndReport, improveOutcomeLines, reportImproveEnd } from './improve-output.ts';

const USAGE =
  'usage: forge improve <tool> [--reason "<why>"] [--wait] [--json] (a tool named ls or show: --tool <name>) | forge improve ls [--limit n] [--json] | forge improve show <id|tool> [--wait] [--json]';

/** The words `forge improve` reads as its own commands; a tool of that name is named with --tool. */
const SUBCOMMANDS = new Set(['ls', 'show']);

/**
 * forge improve <tool>: rewrite a tool behind the regression gate, by hand; forge improve ls | show
 * <id|tool> [--wait]: improve cycles however they were started (by hand, the evaluator, a task's
 * failure, a forge under a taken name), seen or followed later, reading as `forge improve --wait`
 * would have. `ls` and `show` are valid tool names: such a tool is improved with `--tool ls`.
 */
export async function improveCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(args, ['--limit']),
    allowPositionals: true,
    options: {
      reason: { type: 'string' },
      tool: { type: 'string' },
      limit: { type: 'string' },
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.tool === undefined && positionals[0] !== undefined && SUBCOMMANDS.has(positionals[0])) return cyclesCommand(cfg, args);
  if (values.limit !== undefined) throw usageError('--limit lists cycles: forge improve ls --limit n', USAGE);
  if (values.tool !== undefined && positionals.length)
    throw usageError(`forge improve takes one tool: --tool ${values.tool} or ${positionals[0]}, not both`, USAGE);
  const [tool = values.tool, ...extra] = positionals;
  if (!tool) throw missingArgument('improve', 'the name of the tool to improve (forge tools ls lists them)', USAGE);
  if (extra.length) throw usageError(`forge improve takes one tool, not ${positionals.length}: ${positionals.join(' ')}`, USAGE);
  return withSession(cfg, async (session) => {
    const started = await withUsage(startImprove(session, { tool, reason: values.reason, by: process.env.USER ?? 'cli' }), USAGE);
    const { workflowId, uiUrl } = started;
    if (!values.json) say(`improving ${tool} in ${workflowId}${uiUrl ? `\n  ${uiUrl}` : ''}`);
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, runId: started.runId, uiUrl });
      else say(`  ${followLine('improve', `${workflowId}@${started.runId}`)}`);
      return 0;
    }
    return followImproveAndReport(session, started, { json: values.json });
  });
}

/** forge improve ls [--limit n] | show <id|tool> [--wait], as forge forges ls | show is for forges. */
async function cyclesCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const line = parseCycleCommand(args, {
    name: 'improve',
    noun: 'improve cycle',
    idHint: 'forge improve ls lists them; a tool name shows its latest',
    usage: USAGE,
  });
  if (line.sub === 'ls')
    return withSession(cfg, async (session) => {
      const { cycles, total } = await listImproves(session, { limit: line.limit });
      if (line.json) printJson({ ok: true, cycles, total });
      else
        say(
          cycleRowLines(
            cycles.map((c) => ({
              workflowId: c.id,
              status: c.status,
              createdAt: c.createdAt,
              extra: c.attempts.length ? String(c.attempts.length) : '-',
              // while it runs, what started it
              text: `${c.tool}: ${c.outcome ?? `${c.trigger ?? 'started'}${c.reason ? ` — ${c.reason}` : ''}`}`,
            })),
            total,
            {
              plural: 'improve cycles',
              what: 'tool: outcome',
              extra: 'attempts',
              empty: 'no improve cycles yet: start one with  forge improve <tool>',
              showOne: 'one cycle: forge improve show <id|tool> [--wait]',
            },
          ).join('\n'),
        );
      return 0;
    });
  const { id, json, wait } = line;
  return withSession(cfg, async (session) => {
    const view = await showImprove(session, id);
    const head = improveHeadLine(view);
    if (wait) {
      if (!json) say(head);
      // Still going: followed as forge improve --wait follows it. Over: what following it would
      // have ended with, to the same words, fix and exit code (3 for a model nobody could reach).
      if (improveIsOpen(view)) return followImproveAndReport(session, await improveToFollow(session, view), { json });
      return reportImproveEnd(session, view, await improveEnding(session, view), json);
    }
    if (json) printJson({ ok: true, cycle: view });
    else {
      say(head);
      printImprove(view);
    }
    // Without --wait the cycle was shown, however it stands.
    return 0;
  });
}

/** The cycle's first line: its id, its tool and what started it; its run's UI link under it. */
function improveHeadLine(v: ImproveView): string {
  const why = v.trigger ? ` (${v.trigger}${v.reason ? `: ${v.reason}` : ''})` : '';
  return cycleHeadLine('improve', v.id, `${v.tool}${why}`, v.uiUrl);
}

/** An improve cycle as it stands: what it came to as `forge improve --wait` prints it, how it ended from outside, or where it is now. */
function printImprove(v: ImproveView): void {
  if (!improveIsOpen(v)) {
    const end = improveLedgerEnding(v);
    if (!end.ok) say(`${v.status}\n${end.error}`);
    else for (const line of improveOutcomeLines(end.result)) say(line);
    return;
  }
  const p = v.progress;
  if (!p) say(NOT_BEGUN);
  else {
    const attempt = attemptLabel(p);
    say(`running — ${p.phase}${attempt ? ` (${attempt})` : ''}`);
    for (const a of p.attempts) say(`  attempt ${a.attempt}: ${a.passed ? 'passed' : 'refused'} — ${a.summary.split('\n')[0]}`);
  }
  say(followLine('improve', v.id));
}
