import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { ForgeConfig } from '../../domain/config.ts';
import { InvalidInputError } from '../../domain/errors.ts';
import { CYCLE_KIND } from '../../domain/search-attributes.ts';
import { taskInputSchema, type TaskResult } from '../../domain/task.ts';
import { hasPollers } from '../../app/stack.ts';
import { temporalClient, temporalEndpoint } from '../../infra/temporal.ts';
import { progressQuery } from '../../workflows/definitions.ts';
import { printJson, say, uiLink } from '../output.ts';
import { progressPrinter } from '../progress.ts';

export async function runCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { wait: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
  });
  const parsed = taskInputSchema.safeParse({ task: positionals.join(' '), sandboxQueue: cfg.FORGE_SANDBOX_QUEUE });
  if (!parsed.success) {
    throw new InvalidInputError('task', `${parsed.error.issues.map((i) => i.message).join('; ')} (usage: forge run "<task>" [--wait] [--json])`);
  }
  const client = await temporalClient(cfg);
  try {
    const workflowId = `task-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
    const handle = await client.workflow.start('taskWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [parsed.data],
      typedSearchAttributes: [{ key: CYCLE_KIND, value: 'task' }],
    });
    const link = uiLink(temporalEndpoint(cfg).uiUrl, cfg.TEMPORAL_NAMESPACE, workflowId);
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, runId: handle.firstExecutionRunId, uiUrl: link });
      else say(`started ${workflowId}${link ? `\n  ${link}` : ''}`);
      return 0;
    }
    if (!values.json) say(`started ${workflowId}${link ? `\n  ${link}` : ''}`);
    return await follow(client, cfg, handle, values.json, link);
  } finally {
    await client.connection.close();
  }
}

async function follow(client: Client, cfg: ForgeConfig, handle: WorkflowHandle, json: boolean, link: string | null): Promise<number> {
  const print = progressPrinter();
  let warned = false;
  const started = Date.now();
  const resultPromise = handle.result() as Promise<TaskResult>;
  let settled = false;
  resultPromise.then(() => (settled = true), () => (settled = true));
  while (!settled) {
    try {
      const progress = await handle.query(progressQuery);
      if (!json) print(progress);
    } catch {
      /* no worker has picked the workflow up yet */
    }
    if (!warned && Date.now() - started > 5000 && !(await hasPollers(client, cfg.FORGE_TASK_QUEUE))) {
      warned = true;
      process.stderr.write(`warning: no worker polls ${cfg.FORGE_TASK_QUEUE}; the task waits until one does (run: forge up)\n`);
    }
    await Promise.race([resultPromise.catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
  }
  const final = await handle.query(progressQuery).catch(() => undefined);
  if (final && !json) print(final);
  try {
    const result = await resultPromise;
    if (json) printJson({ ok: true, workflowId: result.workflowId, uiUrl: link, status: 'completed', result });
    else say(`completed\n${result.answer}`);
    return 0;
  } catch (err) {
    const message = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message;
    if (json) printJson({ ok: false, workflowId: handle.workflowId, uiUrl: link, status: 'failed', error: message });
    else process.stderr.write(`failed: ${message}\n`);
    return 1;
  }
}
