import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { followTask, startTask } from '../../app/tasks.ts';
import { withUsage } from '../args.ts';
import { printJson, say } from '../output.ts';
import { progressPrinter } from '../progress.ts';

const USAGE = 'usage: forge run "<task>" [--wait] [--json]';

export async function runCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { wait: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
  });
  return withSession(cfg, async (session) => {
    const started = await withUsage(startTask(session, positionals.join(' ')), USAGE);
    const { workflowId, uiUrl } = started;
    if (!values.wait) {
      if (values.json) printJson({ ok: true, workflowId, runId: started.runId, uiUrl });
      else say(`started ${workflowId}${uiUrl ? `\n  ${uiUrl}` : ''}`);
      return 0;
    }
    if (!values.json) say(`started ${workflowId}${uiUrl ? `\n  ${uiUrl}` : ''}`);
    const print = progressPrinter();
    const end = await followTask(session, started, {
      onProgress: values.json ? undefined : print,
      onNoWorker: (queue) => process.stderr.write(`warning: no worker polls ${queue}; the task waits until one does (run: forge up)\n`),
    });
    if (end.ok) {
      if (values.json) printJson({ ok: true, workflowId: end.result.workflowId, uiUrl, status: 'completed', result: end.result });
      else say(`completed\n${end.result.answer}`);
      return 0;
    }
    if (values.json) printJson({ ok: false, workflowId, uiUrl, status: 'failed', error: end.error });
    else process.stderr.write(`failed: ${end.error}\n`);
    return 1;
  });
}
