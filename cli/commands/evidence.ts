import { parseArgs } from 'node:util';
import type { ForgeConfig } from '../../app/context.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { type Expectation, type FailureEvidence, giveFeedback, listFailures, showFailure } from '../../app/evidence.ts';
import { joinDashedNumbers, limitOption, refuseListingOptions, withUsage } from '../args.ts';
import { clipJson, clipLine, missingArgument, printJson, say, usageError } from '../output.ts';

const FEEDBACK_USAGE =
  'usage: forge feedback <task-id> --bad "<what should have happened>" [--expect-tool <name>] [--expect-answer "<text>"] [--severity 0..1] [--json]';
const FAILURES_USAGE = 'usage: forge failures [ls] [--since 24h] [--limit n] [--json] | forge failures show <id> [--json]';

/** An expectation as a person reads it: "uses count_words", "answer contains \"4\"". */
export function expectationText(e: Expectation): string {
  switch (e.kind) {
    case 'completes':
      return e.description ? `completes (${clipLine(e.description, 80)})` : 'completes';
    case 'uses-tool':
      return `uses ${e.tool}`;
    case 'avoids-tool':
      return `avoids ${e.tool}`;
    case 'forges-nothing':
      return 'forges nothing';
    case 'answer-contains':
      return `answer contains ${JSON.stringify(e.text)}`;
    case 'no-escalation':
      return 'no escalation';
  }
}

const curation = (e: FailureEvidence) =>
  e.duplicateOf
    ? `duplicate of #${e.duplicateOf}`
    : e.batchKey
      ? `batch ${e.batchKey}`
      : e.curatedAt
        ? 'curated'
        : e.failureType === 'declined'
          ? 'for the record: never curated'
          : 'uncurated';

/** forge feedback <task-id> --bad "…": a person's word on a task, as failure evidence for self-evolution. */
export async function feedbackCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(args, ['--severity']),
    allowPositionals: true,
    options: {
      bad: { type: 'string' },
      'expect-tool': { type: 'string' },
      'expect-answer': { type: 'string' },
      severity: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const [taskId, ...extra] = positionals;
  if (!taskId) throw missingArgument('feedback', 'the id of the task it is about (forge run prints it)', FEEDBACK_USAGE);
  if (values.bad === undefined) throw missingArgument('feedback', '--bad "<what should have happened>"', FEEDBACK_USAGE);
  if (extra.length)
    throw usageError(`forge feedback takes one task id, not ${positionals.length}: ${positionals.join(' ')}`, FEEDBACK_USAGE);
  let severity: number | undefined;
  if (values.severity !== undefined) {
    severity = Number(values.severity);
    if (!Number.isFinite(severity) || severity < 0 || severity > 1)
      throw new InvalidInputError('--severity', `${JSON.stringify(values.severity)} is not a number from 0 to 1 (${FEEDBACK_USAGE})`);
  }
  const { evidence, created } = await withUsage(
    giveFeedback(cfg, { taskId, bad: values.bad, expectTool: values['expect-tool'], expectAnswer: values['expect-answer'], severity }),
    FEEDBACK_USAGE,
  );
  if (values.json) {
    printJson({ ok: true, created, evidence });
    return 0;
  }
  say(
    `${created ? 'recorded' : 'already recorded'} as failure evidence #${evidence.id} (${evidence.failureType}, severity ${evidence.severity}) for ${evidence.workflowId}`,
  );
  say(`  a replay passes when: ${evidence.expectations.map(expectationText).join('; ')}`);
  if (!values['expect-tool'] && !values['expect-answer'])
    say('  (add --expect-tool or --expect-answer to give the replay something it can check besides completing)');
  say(`  the nightly curation hands it to an evolve cycle; see it with: forge failures show ${evidence.id}`);
  return 0;
}

/** forge failures ls | show <id>: failure evidence, newest first, and one row whole. */
export async function failuresCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(args, ['--limit']),
    allowPositionals: true,
    options: { since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const [sub = 'ls', id, ...extra] = positionals;
  if (sub === 'ls' && id === undefined) {
    const limit = limitOption(values.limit, 50, FAILURES_USAGE);
    const { evidence, total, since } = await withUsage(listFailures(cfg, { since: values.since, limit }), FAILURES_USAGE);
    if (values.json) {
      printJson({ ok: true, evidence, total, ...(since ? { since } : {}) });
      return 0;
    }
    if (!evidence.length) {
      say(`no failure evidence${values.since ? ` in the last ${values.since}` : ''}`);
      return 0;
    }
    for (const e of evidence) {
      say(
        `#${String(e.id).padEnd(5)} ${e.createdAt.slice(0, 19).replace('T', ' ')}  ${e.failureType.padEnd(9)} ${e.source.padEnd(17)} ${e.severity.toFixed(2)}  ${clipLine(e.trace.task, 60)}`,
      );
      say(`       expected: ${clipLine(e.expected, 100)}  [${curation(e)}]`);
    }
    if (total > evidence.length) say(`(${total - evidence.length} more not shown: --limit ${total})`);
    return 0;
  }
  if (sub !== 'show') throw usageError(`unknown failures command ${JSON.stringify(sub)}`, FAILURES_USAGE);
  if (id === undefined) throw missingArgument('failures show', 'the id of the evidence (forge failures ls lists them)', FAILURES_USAGE);
  if (extra.length) throw usageError(`forge failures show takes one id, not ${positionals.length - 1}`, FAILURES_USAGE);
  refuseListingOptions(values, ['since', 'limit'], { listing: 'forge failures [ls]', sub: 'show' }, FAILURES_USAGE);
  const e = await withUsage(showFailure(cfg, id), FAILURES_USAGE);
  if (values.json) {
    printJson({ ok: true, evidence: e });
    return 0;
  }
  say(`failure evidence #${e.id}: ${e.failureType} (${e.source}), severity ${e.severity}, ${e.createdAt}, ${curation(e)}`);
  say(`  task      ${e.workflowId}: ${clipLine(e.trace.task, 200)}`);
  say(`  expected  ${e.expected}`);
  say(`  happened  ${e.happened}`);
  say(
    e.expectations.length
      ? `  a replay passes when: ${e.expectations.map(expectationText).join('; ')}`
      : '  never replayed: a person decided this, the agent did nothing wrong that a replay could show',
  );
  say(
    `  trace     ${e.trace.status}${e.trace.turns !== undefined ? `, ${e.trace.turns} turn(s)` : ''}${e.trace.forged.length ? `, forged ${e.trace.forged.join(', ')}` : ''}`,
  );
  for (const c of e.trace.calls) {
    say(`    turn ${c.turn} ${c.tool}${c.version !== undefined ? ` v${c.version}` : ''} ${c.status} ${clipJson(c.input, 120)}`);
    if (c.status === 'succeeded' && c.output !== undefined) say(`      → ${clipJson(c.output, 160)}`);
    else if (c.reason) say(`      ${clipLine(c.reason, 200)}`);
  }
  if (e.trace.answer) say(`  answer    ${clipLine(e.trace.answer, 400)}`);
  return 0;
}
