import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { componentDownIn, modelDownError } from '../../app/follow.ts';
import { followImprove, startImprove } from '../../app/improve.ts';
import { withUsage } from '../args.ts';
import { missingArgument, printJson, reportCycleFailure, say, usageError } from '../output.ts';
import { progressPrinter } from '../progress.ts';
import { followWarnings } from './follow-warnings.ts';

const USAGE = 'usage: forge improve <tool> [--reason "<why>"] [--wait] [--json]';

/** forge improve <tool>: rewrite a tool behind the regression gate, by hand. */
export async function improveCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' }, wait: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
  });
  const [tool, ...extra] = positionals;
  if (!tool) throw missingArgument('improve', 'the name of the tool to improve (forge tools ls lists them)', USAGE);
  if (extra.length) throw usageError(`forge improve takes one tool, not ${positionals.length}: ${positionals.join(' ')}`, USAGE);
  return withSession(cfg, async (session) => {
    const started = await withUsage(startImprove(session, { tool, reason: values.reason, by: process.env.USER ?? 'cli' }), USAGE);
    const { workflowId, uiUrl } = started;
    if (!values.json) say(`improving ${tool} in ${workflowId}${uiUrl ? `\n  ${uiUrl}` : ''}`);
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, uiUrl });
      return 0;
    }
    const print = progressPrinter();
    const end = await followImprove(session, started, {
      onProgress: values.json ? undefined : print,
      ...followWarnings(session, 'improve cycle', print),
    });
    print.stop();
    if (!end.ok)
      return reportCycleFailure(
        values.json,
        started,
        end.error,
        end.ended ? { status: end.ended } : {},
        componentDownIn(cfg, workflowId, end),
      );
    const outcome = end.result;
    if (outcome.status === 'failed' && outcome.modelUnreachable)
      return reportCycleFailure(
        values.json,
        started,
        outcome.reason,
        { outcome },
        modelDownError(cfg, workflowId, outcome.modelUnreachable),
      );
    const ok = outcome.status === 'promoted' || outcome.status === 'skipped';
    if (values.json) printJson({ ok, workflowId, uiUrl, outcome });
    else say(`${outcome.status}: ${outcome.reason}`);
    return ok ? 0 : 1;
  });
}
