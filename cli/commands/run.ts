import { parseArgs } from 'node:util';
import { type ForgeConfig, withSession } from '../../app/context.ts';
import { frozenNow } from '../../app/control.ts';
import { startTask, taskLimitRanges } from '../../app/tasks.ts';
import { joinDashedNumbers, wholeNumberOption, withUsage } from '../args.ts';
import { missingArgument, printJson, say } from '../output.ts';
import { frozenJson, frozenLine } from './cycle-listing.ts';
import { followAndReport } from './task-output.ts';

const USAGE = 'usage: forge run "<task>" [--session id] [--wait] [--json] [--max-turns n] [--max-tool-calls n] [--max-tokens n]';

const LIMIT_OPTIONS = { maxTurns: 'max-turns', maxToolCalls: 'max-tool-calls', maxTokens: 'max-tokens' } as const;

/**
 * The loop's bounds a person set on the command line; absent ones keep their defaults. Checked here,
 * option by option, so a bad value is named by its option (`--max-turns "abc"`), not as the task.
 */
export function limitsFrom(values: { 'max-turns'?: string; 'max-tool-calls'?: string; 'max-tokens'?: string }) {
  const ranges = taskLimitRanges();
  const limits: { maxTurns?: number; maxToolCalls?: number; maxTokens?: number } = {};
  for (const [key, option] of Object.entries(LIMIT_OPTIONS) as [
    keyof typeof LIMIT_OPTIONS,
    (typeof LIMIT_OPTIONS)[keyof typeof LIMIT_OPTIONS],
  ][]) {
    const text = values[option];
    if (text !== undefined) limits[key] = wholeNumberOption(`--${option}`, text, ranges[key], USAGE);
  }
  return Object.keys(limits).length ? limits : undefined;
}

export async function runCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(
      args,
      Object.values(LIMIT_OPTIONS).map((o) => `--${o}`),
    ),
    allowPositionals: true,
    options: {
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'max-turns': { type: 'string' },
      'max-tool-calls': { type: 'string' },
      'max-tokens': { type: 'string' },
      session: { type: 'string' },
    },
  });
  const task = positionals.join(' ').trim();
  if (!task)
    throw missingArgument(
      'run',
      'a task: what the agent should do, in words (e.g. forge run "how many words are in \'a rose is a rose\'?")',
      USAGE,
    );
  const limits = limitsFrom(values);
  return withSession(cfg, async (session) => {
    const started = await withUsage(startTask(session, task, limits, values.session), USAGE);
    const { workflowId, uiUrl } = started;
    const inSession = values.session ? { sessionId: values.session } : {};
    const startedLine = `started ${workflowId}${values.session ? ` in session ${values.session}` : ''}${uiUrl ? `\n  ${uiUrl}` : ''}`;
    if (!values.wait) {
      // Followed, a frozen task says so as it waits; started and left, it is said here.
      const frozen = await frozenNow(cfg);
      if (values.json)
        printJson({ ok: true, workflowId, runId: started.runId, uiUrl, ...inSession, ...(frozen ? { frozen: frozenJson(frozen) } : {}) });
      else say(`${startedLine}${frozen ? `\n  ${frozenLine(frozen, 'task')}` : ''}\n  follow it: forge tasks show ${workflowId} --wait`);
      return 0;
    }
    if (!values.json) say(startedLine);
    return followAndReport(session, started, { json: values.json, extra: inSession });
  });
}
