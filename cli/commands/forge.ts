import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { componentDownIn, modelDownError } from '../../app/follow.ts';
import { followForge, startForge } from '../../app/forge.ts';
import { withUsage } from '../args.ts';
import { missingArgument, printJson, reportCycleFailure, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';

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
    if (!values.json) say(`forging in ${workflowId}${uiUrl ? `\n  ${uiUrl}` : ''}`);
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, uiUrl });
      return 0;
    }
    const print = progressPrinter();
    const end = await followForge(session, started, values.json ? undefined : print);
    print.stop();
    if (!end.ok) return reportCycleFailure(values.json, started, end.error, {}, componentDownIn(cfg, workflowId, end));
    const outcome = end.result;
    if (outcome.status === 'failed' && outcome.modelUnreachable)
      return reportCycleFailure(
        values.json,
        started,
        outcome.reason,
        { outcome },
        modelDownError(cfg, workflowId, outcome.modelUnreachable),
      );
    if (values.json) printJson({ ok: outcome.status === 'registered', workflowId, uiUrl, outcome });
    else
      say(
        outcome.status === 'registered'
          ? // a name the catalog held: what it came to (nothing new, or a new version through its gate)
            (outcome.note ?? `registered ${outcome.name} v${outcome.version} after ${outcome.attempts} verification(s)`)
          : `not registered: ${outcome.reason}`,
      );
    return outcome.status === 'registered' ? 0 : 1;
  });
}
