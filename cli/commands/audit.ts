import { parseArgs } from 'node:util';
import { AUDIT_KINDS, type AuditEntry, auditEntries, auditEntry, parseAuditId } from '../../app/audit.ts';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { ForgeError, InvalidInputError } from '../../app/errors.ts';
import { replayAuditEntry } from '../../app/replay.ts';
import { joinDashedNumbers, limitOption, refuseListingOptions } from '../args.ts';
import { missingArgument, printJson, say } from '../output.ts';

const USAGE =
  'usage: forge audit [--tool name] [--workflow id] [--kind k] [--limit n] [--json] | forge audit show <id> [--json] | forge audit replay <id> [--allow-write] [--json]';

/** `forge audit`, `forge audit show <id>`, `forge audit replay <id>`. Listing and show work while frozen. */
export async function auditCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinDashedNumbers(args, ['--limit']),
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      tool: { type: 'string' },
      workflow: { type: 'string' },
      kind: { type: 'string' },
      limit: { type: 'string' },
      'allow-write': { type: 'boolean', default: false },
    },
  });
  const [sub, idText, ...extra] = positionals;
  if (sub === undefined) {
    const limit = limitOption(values.limit, 20, USAGE);
    // A kind Forge never writes matches nothing: refused, listing the kinds, rather than an empty list that looks like an answer.
    if (values.kind !== undefined && !Object.hasOwn(AUDIT_KINDS, values.kind)) {
      const kinds = Object.keys(AUDIT_KINDS);
      throw new ForgeError(
        `--kind ${JSON.stringify(values.kind)} is not an audit kind: it takes one of ${kinds.join(', ')}`,
        'USAGE',
        `usage: forge audit --kind <${kinds.join('|')}>`,
        { option: '--kind', kinds },
      );
    }
    const entries = await auditEntries(cfg, { tool: values.tool, workflowId: values.workflow, kind: values.kind, limit });
    if (values.json) printJson({ ok: true, entries });
    else if (!entries.length) say('no audit entries match (every tool call, replay and catalog edit is audited here)');
    else for (const e of entries) for (const line of summaryLines(e)) say(line);
    return 0;
  }
  if (sub !== 'show' && sub !== 'replay') throw new InvalidInputError('command', `unknown audit command ${JSON.stringify(sub)} (${USAGE})`);
  if (idText === undefined)
    throw missingArgument(`audit ${sub}`, 'the id of an audit entry (forge audit lists them, e.g. 12 or #12)', USAGE);
  refuseListingOptions(values, ['tool', 'workflow', 'kind', 'limit'], { listing: 'forge audit', sub }, USAGE);
  const id = parseAuditId(idText);
  if (id === null || extra.length)
    throw new InvalidInputError('audit id', `${JSON.stringify(idText ?? '')} is not an audit id like 12 or #12 (${USAGE})`);
  return sub === 'show' ? show(cfg, id, values.json) : replay(cfg, id, { json: values.json, allowWrite: values['allow-write'] });
}

// ---------------------------------------------------------------------------------------------
// Reading

const clip = (text: string, max = 120) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const compact = (v: unknown) => (v === undefined ? 'null' : JSON.stringify(v));

/** The task a call served, in words: the task text of a tool call, the reference of a replay. */
function contextLine(e: AuditEntry): string | null {
  const ctx = e.taskContext;
  if (e.replayOf !== null && ctx && typeof ctx === 'object') {
    const c = ctx as { same?: boolean; requestedBy?: string };
    return `replay of #${e.replayOf} (${c.same ? 'same output' : 'output differs'}), requested by ${c.requestedBy ?? 'unknown'}`;
  }
  if (ctx && typeof ctx === 'object' && typeof (ctx as { task?: unknown }).task === 'string') return (ctx as { task: string }).task;
  return ctx === null || ctx === undefined ? null : compact(ctx);
}

function headline(e: AuditEntry): string {
  const what = e.tool ? `${e.tool}@${e.version ?? '-'}` : '-';
  const outcome = e.success === null ? '' : e.success ? 'ok' : 'FAILED';
  return [`#${e.id}`, e.at, e.kind, what, e.latencyMs === null ? '-' : `${e.latencyMs} ms`, outcome].filter(Boolean).join('  ');
}

/** One entry in a listing: a headline, then reasoning, task, input and output clipped to a line each. */
export function summaryLines(e: AuditEntry): string[] {
  const context = contextLine(e);
  return [
    headline(e),
    ...(e.reasoning ? [`    reasoning  ${clip(e.reasoning)}`] : []),
    ...(context ? [`    task       ${clip(context)}`] : []),
    ...(e.input !== null ? [`    input      ${clip(compact(e.input))}`] : []),
    ...(e.output !== null ? [`    output     ${clip(compact(e.output))}`] : []),
  ];
}

async function show(cfg: ForgeConfig, id: number, json: boolean): Promise<number> {
  const { entry, outputSha256 } = await auditEntry(cfg, id);
  if (json) {
    printJson({ ok: true, entry });
    return 0;
  }
  const pretty = (v: unknown) => JSON.stringify(v, null, 2).replace(/\n/g, '\n    ');
  say(headline(entry));
  say(`  workflow     ${entry.workflowId ?? '-'}`);
  if (entry.replayOf !== null) say(`  replay of    #${entry.replayOf}`);
  say(`  reasoning    ${entry.reasoning ?? '-'}`);
  say(`  task context\n    ${pretty(entry.taskContext)}`);
  say(`  input\n    ${pretty(entry.input)}`);
  say(`  output (sha256 ${outputSha256})\n    ${pretty(entry.output)}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Replaying

async function replay(cfg: ForgeConfig, id: number, opts: { json: boolean; allowWrite: boolean }): Promise<number> {
  const { started, result } = await withSession(cfg, (session) =>
    replayAuditEntry(
      session,
      { auditId: id, allowWrite: opts.allowWrite, requestedBy: localUser() },
      {
        onStarted: ({ workflowId, uiUrl }, target) => {
          if (!opts.json)
            say(
              `replaying #${id}: ${target.tool}@${target.version} on ${clip(compact(target.input), 80)} (workflow ${workflowId})${uiUrl ? `\n  ${uiUrl}` : ''}`,
            );
        },
        onNoWorker: (queue) => process.stderr.write(`warning: no worker polls ${queue}; the replay waits until one does (run: forge up)\n`),
      },
    ),
  );
  if (opts.json) printJson({ ok: true, uiUrl: started.uiUrl, ...result });
  else {
    const run = result.succeeded ? `ran in ${result.latencyMs} ms` : `failed again: ${result.reason ?? 'unknown reason'}`;
    say(
      result.same
        ? `same output (sha256 ${result.replayOutputHash.slice(0, 16)}…), ${run}; audited as #${result.replayAuditId}`
        : `output differs (original sha256 ${result.originalOutputHash.slice(0, 16)}…, replay ${result.replayOutputHash.slice(0, 16)}…), ${run}; audited as #${result.replayAuditId}`,
    );
    if (result.diff) say(result.diff.trimEnd());
  }
  // Like diff(1): a different output is an answer, but one a script should notice.
  return result.same ? 0 : 1;
}
