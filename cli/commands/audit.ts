import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { getAuditEntry, listAudit, replayTarget, outputHash, type AuditEntry } from '../../services/catalog/audit.ts';
import { createKillSwitch } from '../../services/control/kill-switch.ts';
import { AuditEntryNotFoundError, ForgeFrozenError, ReplayNeedsConsentError, parseAuditId, replayRequestSchema, type ReplayResult } from '../../domain/audit.ts';
import type { ForgeConfig } from '../../domain/config.ts';
import { FROZEN_FAILURE, ForgeError, InvalidInputError } from '../../domain/errors.ts';
import { CYCLE_KIND, TOOL_NAME } from '../../domain/search-attributes.ts';
import { hasPollers } from '../../app/stack.ts';
import { temporalClient, temporalEndpoint } from '../../infra/temporal.ts';
import { withDb } from '../../app/db.ts';
import { printJson, say, uiLink } from '../output.ts';

const USAGE = 'usage: forge audit [--tool name] [--workflow id] [--kind k] [--limit n] [--json] | forge audit show <id> [--json] | forge audit replay <id> [--allow-write] [--json]';


/** `forge audit`, `forge audit show <id>`, `forge audit replay <id>`. Listing and show work while frozen. */
export async function auditCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      tool: { type: 'string' },
      workflow: { type: 'string' },
      kind: { type: 'string' },
      limit: { type: 'string', default: '20' },
      'allow-write': { type: 'boolean', default: false },
    },
  });
  const [sub, idText, ...extra] = positionals;
  if (sub === undefined) {
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInputError('--limit', `${JSON.stringify(values.limit)} is not a whole number from 1 to 1000`);
    const entries = await withDb(cfg, (sql) => listAudit(sql, { tool: values.tool, workflowId: values.workflow, kind: values.kind, limit }));
    if (values.json) printJson({ ok: true, entries });
    else if (!entries.length) say('no audit entries match (every tool call, replay and catalog edit is audited here)');
    else for (const e of entries) for (const line of summaryLines(e)) say(line);
    return 0;
  }
  if (sub !== 'show' && sub !== 'replay') throw new InvalidInputError('command', `unknown audit command ${JSON.stringify(sub)} (${USAGE})`);
  const id = parseAuditId(idText);
  if (id === null || extra.length) throw new InvalidInputError('audit id', `${JSON.stringify(idText ?? '')} is not an audit id like 12 or #12 (${USAGE})`);
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
  const entry = await withDb(cfg, (sql) => getAuditEntry(sql, id));
  if (!entry) throw new AuditEntryNotFoundError(id);
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
  say(`  output (sha256 ${outputHash(entry.output)})\n    ${pretty(entry.output)}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Replaying

/**
 * Checks what can be checked without starting anything: the kill switch, and that the entry is a
 * replayable call (and consented to, if it writes). The workflow checks again: it is the authority.
 */
async function precheck(cfg: ForgeConfig, id: number, allowWrite: boolean) {
  return withDb(cfg, async (sql) => {
    const state = await createKillSwitch(sql).state();
    if (state.frozen) throw new ForgeFrozenError(`replay of #${id} refused${state.by ? ` (frozen by ${state.by}${state.since ? ` since ${state.since}` : ''})` : ''}`);
    const target = await replayTarget(sql, id);
    if (target.sideEffect === 'write' && !allowWrite) throw new ReplayNeedsConsentError(id, target.tool, target.version);
    return target;
  });
}

/** A failed replay workflow, as an error a person can act on. */
function replayFailure(err: WorkflowFailedError, id: number, link: string | null): ForgeError {
  const cause = err.cause;
  const message = cause?.message ?? err.message;
  if (cause instanceof ApplicationFailure && cause.type === FROZEN_FAILURE) return new ForgeFrozenError(message);
  const fix = cause instanceof ApplicationFailure ? (cause.details?.[0] as { fix?: string } | undefined)?.fix : undefined;
  return new ForgeError(`replay of #${id} failed: ${message}`, cause instanceof ApplicationFailure && cause.type ? cause.type : 'REPLAY_FAILED', fix ?? (link ? `see the workflow: ${link}` : 'see the replay workflow in the Temporal UI'));
}

async function awaitResult(client: Client, cfg: ForgeConfig, handle: WorkflowHandle): Promise<ReplayResult> {
  const result = handle.result() as Promise<ReplayResult>;
  // Warn once when nothing will pick the replay up, instead of waiting silently.
  const warning = setTimeout(() => {
    void Promise.all([hasPollers(client, cfg.FORGE_TASK_QUEUE), hasPollers(client, cfg.FORGE_SANDBOX_QUEUE)]).then(([control, sandbox]) => {
      if (!control || !sandbox) process.stderr.write(`warning: no worker polls ${!control ? cfg.FORGE_TASK_QUEUE : cfg.FORGE_SANDBOX_QUEUE}; the replay waits until one does (run: forge up)\n`);
    }, () => {});
  }, 5000);
  try {
    return await result;
  } finally {
    clearTimeout(warning);
  }
}

async function replay(cfg: ForgeConfig, id: number, opts: { json: boolean; allowWrite: boolean }): Promise<number> {
  const target = await precheck(cfg, id, opts.allowWrite);
  const request = replayRequestSchema.parse({
    auditId: id,
    sandboxQueue: cfg.FORGE_SANDBOX_QUEUE,
    requestedBy: process.env.FORGE_USER ?? os.userInfo().username,
    allowWrite: opts.allowWrite,
  });
  const client = await temporalClient(cfg);
  try {
    const workflowId = `replay-${id}-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
    const handle = await client.workflow.start('replayWorkflow', {
      taskQueue: cfg.FORGE_TASK_QUEUE,
      workflowId,
      args: [request],
      typedSearchAttributes: [
        { key: CYCLE_KIND, value: 'replay' },
        { key: TOOL_NAME, value: target.tool },
      ],
    });
    const link = uiLink(temporalEndpoint(cfg).uiUrl, cfg.TEMPORAL_NAMESPACE, workflowId);
    if (!opts.json) say(`replaying #${id}: ${target.tool}@${target.version} on ${clip(compact(target.input), 80)} (workflow ${workflowId})${link ? `\n  ${link}` : ''}`);
    const result = await awaitResult(client, cfg, handle).catch((err: unknown) => {
      throw err instanceof WorkflowFailedError ? replayFailure(err, id, link) : err;
    });
    if (opts.json) printJson({ ok: true, uiUrl: link, ...result });
    else {
      const run = result.succeeded ? `ran in ${result.latencyMs} ms` : `failed again: ${result.reason ?? 'unknown reason'}`;
      say(result.same
        ? `same output (sha256 ${result.replayOutputHash.slice(0, 16)}…), ${run}; audited as #${result.replayAuditId}`
        : `output differs (original sha256 ${result.originalOutputHash.slice(0, 16)}…, replay ${result.replayOutputHash.slice(0, 16)}…), ${run}; audited as #${result.replayAuditId}`);
      if (result.diff) say(result.diff.trimEnd());
    }
    // Like diff(1): a different output is an answer, but one a script should notice.
    return result.same ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}
