import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { frozenNow } from '../../app/control.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { type BudgetWait, budgetWaitOf, startForge } from '../../app/forge.ts';
import { withUsage } from '../args.ts';
import { missingArgument, printJson, say } from '../output.ts';
import { followLine, frozenJson, frozenLine, waitsForPersonLine } from './cycle-listing.ts';
import { followForgeAndReport } from './forge-output.ts';

const USAGE = 'usage: forge forge "<what the tool must do>" [--name snake_name] [--docs file] [--openapi file.json] [--wait] [--json]';

function readFileArg(file: string | undefined, what: string): string | undefined {
  if (!file) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(what, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** forge forge "<need>" [--name n] [--docs file] [--openapi file.json] [--wait] [--json] */
export async function forgeCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      docs: { type: 'string' },
      openapi: { type: 'string' },
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const need = positionals.join(' ').trim();
  if (!need) throw missingArgument('forge', 'a description of the tool: what it must do, in a sentence', USAGE);
  const openApiText = readFileArg(values.openapi, 'OpenAPI file');
  let openApi: unknown;
  if (openApiText !== undefined) {
    try {
      openApi = JSON.parse(openApiText);
    } catch (err) {
      throw new InvalidInputError('OpenAPI file', `${values.openapi} is not JSON: ${(err as Error).message}`);
    }
  }
  const ask = { need, name: values.name, apiDocs: readFileArg(values.docs, 'API docs file'), openApi };
  return withSession(cfg, async (session) => {
    const started = await withUsage(startForge(session, ask), USAGE);
    const { workflowId, uiUrl } = started;
    const startedLine = `forging in ${workflowId}${uiUrl ? `\n  ${uiUrl}` : ''}`;
    if (!values.wait) {
      // Followed, the forge says what it waits for as it waits; started and left, it is said here.
      const [frozen, budget] = await Promise.all([frozenNow(cfg), budgetWaitOf(session, started, ask.name)]);
      if (values.json)
        printJson({
          ok: true,
          workflowId,
          runId: started.runId,
          uiUrl,
          ...(frozen ? { frozen: frozenJson(frozen) } : {}),
          ...(budget
            ? { waitsFor: { kind: 'budget', approvalId: budget.approvalId ?? null, usedToday: budget.usedToday, limit: budget.limit } }
            : {}),
        });
      else {
        const waits = [...(budget ? [budgetLine(budget)] : []), ...(frozen ? [frozenLine(frozen, 'forge')] : [])];
        say([startedLine, ...waits, followLine('forges', workflowId)].join('\n  '));
      }
      return 0;
    }
    if (!values.json) say(startedLine);
    return followForgeAndReport(session, started, { json: values.json });
  });
}

/** A forge past today's budget: the approval it waits for and the commands that decide it, or where it will be listed. */
function budgetLine(b: BudgetWait): string {
  const why = `today's forge budget is spent (${b.usedToday} of ${b.limit} new tools)`;
  return b.approvalId
    ? waitsForPersonLine(b.approvalId, undefined, why)
    : `will wait for a person — ${why}: once a worker begins it, forge approvals lists its approval`;
}
