import { type ForgeConfig, type Session, withSession } from '../../app/context.ts';
import { frozenNow, type KillSwitchState } from '../../app/control.ts';
import { type ForgeView, forgeEnding, forgeIsOpen, forgeToFollow, ledgerEnding, listForges, showForge } from '../../app/forge.ts';
import { printJson, say } from '../output.ts';
import { attemptLabel } from '../progress.ts';
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
import { followForgeAndReport, forgeOutcomeLine, reportForgeEnd, unjudgedLines } from './forge-output.ts';

const USAGE = 'usage: forge forges [ls] [--limit n] [--json] | forge forges show <id> [--wait] [--json]';

/**
 * `forge forges ls` and `forge forges show <id> [--wait]`: a forge started without --wait (or by
 * a task's forge_tool call, MCP's forge_tool, another person), seen or followed later, reading as
 * `forge forge --wait` would have — as `forge tasks` does for tasks.
 */
export async function forgesCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const line = parseCycleCommand(args, {
    name: 'forges',
    noun: 'forge',
    idHint: 'forge forge printed it; forge forges lists them',
    usage: USAGE,
  });
  if (line.sub === 'ls')
    return withSession(cfg, async (session) => {
      const { forges, total } = await listForges(session, { limit: line.limit });
      if (line.json) printJson({ ok: true, forges, total });
      else
        say(
          cycleRowLines(
            forges.map((f) => ({ ...f, text: f.name ? `${f.name}: ${f.need}` : f.need })),
            total,
            {
              plural: 'forges',
              what: 'tool: need',
              empty: 'no forges yet: start one with  forge forge "<what the tool must do>"',
              showOne: 'one forge: forge forges show <id> [--wait]',
            },
          ).join('\n'),
        );
      return 0;
    });
  const { id, json, wait } = line;
  return withSession(cfg, async (session) => {
    const view = await showForge(session, id);
    const head = cycleHeadLine('forge', view.workflowId, view.need, view.uiUrl);
    if (wait) {
      if (!json) say(head);
      // Still going: followed as forge forge --wait follows it. Over: what following it would have
      // ended with, to the same words, fix and exit code (3 for a model nobody could reach).
      if (forgeIsOpen(view)) return followForgeAndReport(session, await forgeToFollow(session, view), { json });
      return reportForgeEnd(session, view, await forgeEnding(session, view), json, view.attempts);
    }
    // A forge still going waits while Forge is frozen: said beside it.
    const frozen = forgeIsOpen(view) ? await frozenNow(cfg) : undefined;
    if (json) printJson({ ok: true, forge: view, ...(frozen ? { frozen: frozenJson(frozen) } : {}) });
    else {
      say(head);
      await printForge(session, view, frozen);
    }
    // Without --wait the forge was shown, however it stands.
    return 0;
  });
}

/** A forge as it stands: what it came to as `forge forge --wait` prints it, how it ended from outside, or where it is now. */
async function printForge(session: Session, v: ForgeView, frozen?: KillSwitchState): Promise<void> {
  if (!forgeIsOpen(v)) {
    const end = ledgerEnding(v);
    if (!end.ok) say(`${v.status}\n${end.error}`);
    else for (const line of [forgeOutcomeLine(end.result), ...(await unjudgedLines(session, end.result, v.attempts))]) say(line);
    return;
  }
  const p = v.progress;
  if (!p) say(NOT_BEGUN);
  else {
    const attempt = attemptLabel(p);
    say(`running — ${p.phase}${attempt ? ` (${attempt})` : ''}${p.toolName ? `: ${p.toolName}` : ''}`);
    if (p.pendingApproval) say(waitsForPersonLine(p.pendingApproval));
  }
  if (frozen) say(frozenLine(frozen, 'forge'));
  say(followLine('forges', v.workflowId));
}
