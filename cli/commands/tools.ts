import { parseArgs } from 'node:util';
import {
  archiveToolByHand,
  listTools,
  rollbackTool,
  scoreTools,
  setToolPinned,
  showTool,
  type ToolListing,
  toolHistory,
} from '../../app/catalog.ts';
import { type ForgeConfig, localUser } from '../../app/context.ts';
import { InvalidInputError } from '../../app/errors.ts';
import { missingArgument, printJson, say, usageError } from '../output.ts';
import { gateLines } from './gate-lines.ts';

// forge tools: the catalog, read (ls, show, history, score) and edited by a person (pin, rollback, archive).

const jsonFlag = { json: { type: 'boolean' as const, default: false } };

const toolsUsage =
  'usage: forge tools ls [--all] | show <name> | history <name> | score [<name>] | pin <name> | unpin <name> | rollback <name> [--to <version>] | archive <name> --reason "<why>"  [--json]';

export async function toolsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...jsonFlag,
      all: { type: 'boolean' as const, default: false },
      to: { type: 'string' as const },
      reason: { type: 'string' as const },
    },
  });
  const [sub = 'ls', name] = positionals;
  if (sub === 'ls') {
    const tools = await listTools(cfg, { all: values.all });
    if (values.json) printJson({ ok: true, tools });
    else if (!tools.length) say('no tools yet: forge one with  forge forge "<what the tool must do>"');
    else for (const line of toolsTable(tools)) say(line);
    return 0;
  }
  if (sub === 'score') return scoreCommand(cfg, name, values.json);
  const known = ['show', 'history', 'pin', 'unpin', 'rollback', 'archive'];
  if (!known.includes(sub)) throw usageError(`unknown tools command ${JSON.stringify(sub)}`, toolsUsage);
  if (!name) throw missingArgument(`tools ${sub}`, 'the name of a tool (forge tools ls lists them)', toolsUsage);
  if (sub === 'show') {
    const details = await showTool(cfg, name);
    if (values.json) printJson({ ok: true, tool: details });
    else {
      say(
        `${details.name} v${details.currentVersion ?? '-'} (${details.status}, trust ${details.stats.level}${details.pinned ? ', pinned' : ''})`,
      );
      say(`  ${details.description}`);
      say(`  side effect: ${details.sideEffect}${details.destructive ? ', destructive' : ''}`);
      say(
        `  permissions: network ${JSON.stringify(details.manifest?.permissions.network ?? [])}, env ${JSON.stringify(details.manifest?.permissions.env ?? [])}`,
      );
      say(
        // With no calls there is no rate: "0%" would read as every call failing.
        `  calls: ${details.stats.invocations}, success ${details.stats.invocations ? `${(details.stats.successRate * 100).toFixed(0)}%` : '- (no calls yet)'}, avg ${latency(details.stats.avgLatencyMs)}`,
      );
      if (details.pinned) say('  pinned: never rewritten automatically (forge tools unpin to allow it)');
      if (details.status === 'archived')
        say(
          `  archived ${details.archivedAt ?? ''}: ${details.archiveReason ?? '(no reason given)'}${details.replacedBy ? `; replaced by ${details.replacedBy}` : ''}`,
        );
      say(`  folder: ${details.dir ?? '-'}`);
    }
    return 0;
  }
  if (sub === 'history') {
    const history = await toolHistory(cfg, name);
    if (values.json) printJson({ ok: true, name, history });
    else for (const h of history) for (const line of historyLines(h)) say(line);
    return 0;
  }
  if (sub === 'pin' || sub === 'unpin') {
    const by = localUser();
    const r = await setToolPinned(cfg, { name, pinned: sub === 'pin', by, reason: values.reason });
    if (values.json) printJson({ ok: true, ...r, by });
    else if (!r.changed) say(`${name} already was ${r.pinned ? 'pinned' : 'unpinned'}`);
    else say(r.pinned ? `pinned ${name}: it is never rewritten automatically` : `unpinned ${name}: the improve cycle may rewrite it again`);
    return 0;
  }
  if (sub === 'rollback') {
    const to = values.to === undefined ? undefined : Number(values.to.replace(/^v/, ''));
    if (to !== undefined && (!Number.isInteger(to) || to < 1))
      throw new InvalidInputError('version', `--to ${JSON.stringify(values.to)} is not a version number (e.g. --to 2)`);
    const by = localUser();
    const r = await rollbackTool(cfg, { name, to, by, reason: values.reason });
    if (values.json) printJson({ ok: true, ...r, by });
    else if (!r.changed) say(`v${r.to} already is ${name}'s current version: nothing changed`);
    else {
      say(`${name}: v${r.from ?? '-'} → v${r.to} is current again (audit #${r.auditId}); the next call runs v${r.to}`);
      if (r.alert && !r.alert.delivered && !r.alert.skipped)
        say(`  the alert webhook was not reached: ${r.alert.error ?? 'unknown error'}`);
    }
    return 0;
  }
  if (sub === 'archive') {
    if (!values.reason)
      throw missingArgument(
        'tools archive',
        '--reason "<why>": the audit log and the alert carry it',
        `forge tools archive ${name} --reason "<why>"`,
      );
    const by = localUser();
    const r = await archiveToolByHand(cfg, { name, by, reason: values.reason });
    if (values.json) printJson({ ok: true, ...r, by });
    else if (!r.changed) say(`${name} already was archived`);
    else {
      say(`archived ${name}: kept on disk and in history, no longer offered (forge tools ls --all lists it)`);
      if (r.alert && !r.alert.delivered && !r.alert.skipped)
        say(`  the alert webhook was not reached: ${r.alert.error ?? 'unknown error'}`);
    }
    return 0;
  }
  throw usageError(`unknown tools command ${JSON.stringify(sub)}`, toolsUsage);
}

/** A mean latency as a person reads it: whole milliseconds (the registry's average is a float: 48.666666666666664). */
export const latency = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : `${Math.round(ms)} ms`);

/**
 * `forge tools ls` as a table: a header row like the other tables' (forge tools score), columns
 * padded to line up, no trailing spaces; `*` marks a pinned tool, explained under the table.
 */
export function toolsTable(tools: ToolListing[]): string[] {
  const row = (cells: { name: string; ver: string; status: string; trust: string; effect: string; calls: string; what: string }) =>
    `${cells.name.padEnd(28)} ${cells.ver.padEnd(4)} ${cells.status.padEnd(12)} ${cells.trust.padEnd(12)} ${cells.effect.padEnd(6)} ${cells.calls.padStart(5)}  ${cells.what}`.trimEnd();
  const lines = [
    row({ name: 'tool', ver: 'ver', status: 'status', trust: 'trust', effect: 'effect', calls: 'calls', what: 'description' }),
  ];
  for (const t of tools)
    lines.push(
      row({
        name: t.name,
        ver: `v${t.currentVersion ?? '-'}`,
        status: t.status + (t.pinned ? '*' : ''),
        trust: t.stats.level,
        effect: t.sideEffect,
        calls: String(t.stats.invocations),
        what: `${t.description.replace(/\s+/g, ' ').trim().slice(0, 60).trimEnd()}${t.replacedBy ? `  (replaced by ${t.replacedBy})` : ''}`,
      }),
    );
  if (tools.some((t) => t.pinned)) lines.push('* pinned: never rewritten automatically');
  return lines;
}

/**
 * One version in `forge tools history`: its headline, the gate's report, its diff indented under
 * it. A diff's blank context line (a single space) would be indentation alone: printed empty.
 */
export function historyLines(h: Awaited<ReturnType<typeof toolHistory>>[number]): string[] {
  return [
    `v${h.version} ${h.current ? '(current) ' : ''}${h.status} by ${h.createdBy} at ${new Date(h.createdAt).toISOString()}${h.onDisk !== 'same' ? ` [on disk: ${h.onDisk}]` : ''}`,
    ...gateLines(h.gateReport).map((line) => `    ${line}`),
    ...(h.diff
      ? h.diff
          .replace(/\n$/, '')
          .split('\n')
          .map((line) => `    ${line}`.replace(/^\s+$/, ''))
      : []),
  ];
}

const fixed = (x: number | null | undefined, digits = 2) => (x === null || x === undefined ? '-' : x.toFixed(digits));

/** `forge tools score [<name>]`: the evaluator's reading, as a table or one tool in detail. */
async function scoreCommand(cfg: ForgeConfig, name: string | undefined, json: boolean): Promise<number> {
  const scores = await scoreTools(cfg, name);
  if (json) {
    printJson(name ? { ok: true, score: scores[0] } : { ok: true, scores });
    return 0;
  }
  if (!scores.length) {
    say('no tools yet: forge one with  forge forge "<what the tool must do>"');
    return 0;
  }
  if (!name) {
    say(`${'tool'.padEnd(28)} ${'ver'.padEnd(4)} ${'calls'.padStart(5)} ${'score'.padStart(5)}  ${'verdict'.padEnd(17)} reason`);
    for (const s of scores)
      say(
        `${s.tool.padEnd(28)} ${`v${s.version ?? '-'}`.padEnd(4)} ${String(s.stats.calls).padStart(5)} ${fixed(s.score).padStart(5)}  ${(s.verdict + (s.pinned ? '*' : '')).padEnd(17)} ${s.reason}`,
      );
    if (scores.some((s) => s.pinned)) say('* pinned: never rewritten automatically');
    return 0;
  }
  const s = scores[0]!;
  say(
    `${s.tool} v${s.version ?? '-'}: ${s.verdict}${s.score === null ? '' : `, score ${fixed(s.score, 3)}`}${s.pinned ? ' (pinned)' : ''}`,
  );
  say(`  ${s.reason}`);
  say(`  over the last ${s.stats.calls} of ${s.totalCalls} call(s) of this version (window ${s.window})`);
  if (s.components)
    say(
      `  success rate ${fixed(s.components.successRate, 3)}, latency ${fixed(s.components.latency, 3)} (avg ${latency(s.stats.avgLatencyMs)}), consistency ${fixed(s.components.consistency, 3)} (${s.stats.minLatencyMs} to ${s.stats.maxLatencyMs} ms)`,
    );
  for (const e of s.errors) say(`  ×${e.count}  ${e.message}`);
  return 0;
}
