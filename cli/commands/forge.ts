import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import type { ForgeConfig } from '../../domain/config.ts';
import { InvalidInputError } from '../../domain/errors.ts';
import { forgeRequestSchema, type ForgeOutcome } from '../../domain/forge.ts';
import { CYCLE_KIND } from '../../domain/search-attributes.ts';
import { temporalClient, temporalEndpoint } from '../../infra/temporal.ts';
import { forgeProgressQuery } from '../../workflows/definitions.ts';
import { printJson, say, uiLink } from '../output.ts';
import { progressPrinter } from '../progress.ts';

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
  const openApiText = readFileArg(values.openapi, 'OpenAPI file');
  let openApi: unknown;
  if (openApiText !== undefined) {
    try {
      openApi = JSON.parse(openApiText);
    } catch (err) {
      throw new InvalidInputError('OpenAPI file', `${values.openapi} is not JSON: ${(err as Error).message}`);
    }
  }
  const parsed = forgeRequestSchema.safeParse({
    need: positionals.join(' '),
    name: values.name,
    apiDocs: readFileArg(values.docs, 'API docs file'),
    openApi,
    sandboxQueue: cfg.FORGE_SANDBOX_QUEUE,
  });
  if (!parsed.success) {
    throw new InvalidInputError('forge request', `${parsed.error.issues.map((i) => `${i.path.join('.') || 'need'}: ${i.message}`).join('; ')} (usage: forge forge "<what the tool must do>" [--name snake_name] [--docs file] [--openapi file.json] [--wait] [--json])`);
  }
  const client = await temporalClient(cfg);
  try {
    const workflowId = `forge-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
    const handle = await client.workflow.start('forgeWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [parsed.data],
      typedSearchAttributes: [{ key: CYCLE_KIND, value: 'forge' }],
    });
    const link = uiLink(temporalEndpoint(cfg).uiUrl, cfg.TEMPORAL_NAMESPACE, workflowId);
    if (!values.json) say(`forging in ${workflowId}${link ? `\n  ${link}` : ''}`);
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, uiUrl: link });
      return 0;
    }
    const print = progressPrinter();
    let done = false;
    const result = handle.result() as Promise<ForgeOutcome>;
    result.then(() => (done = true), () => (done = true));
    while (!done) {
      const p = await handle.query(forgeProgressQuery).catch(() => undefined);
      if (p && !values.json) print(p);
      await Promise.race([result.catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
    }
    // The last transitions happened after the last poll; a closed workflow still answers queries.
    const final = await handle.query(forgeProgressQuery).catch(() => undefined);
    if (final && !values.json) print(final);
    try {
      const outcome = await result;
      if (values.json) printJson({ ok: outcome.status === 'registered', workflowId, uiUrl: link, outcome });
      else say(outcome.status === 'registered' ? `registered ${outcome.name} v${outcome.version} after ${outcome.attempts} verification(s)` : `not registered: ${outcome.reason}`);
      return outcome.status === 'registered' ? 0 : 1;
    } catch (err) {
      const message = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message;
      if (values.json) printJson({ ok: false, workflowId, error: message });
      else process.stderr.write(`failed: ${message}\n`);
      return 1;
    }
  } finally {
    await client.connection.close();
  }
}
