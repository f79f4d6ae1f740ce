import { randomUUID } from 'node:crypto';
import { PermanentError } from '../../domain/errors.ts';
import type { ToolStatus } from '../../domain/trust.ts';
import type { AlertDelivery, Alerts } from '../control/alerts.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { recordAudit } from './audit.ts';
import { lockTool, type Store, ToolNotFoundError, type ToolRow, type VersionRow } from './store.ts';

/**
 * A person's levers on the catalog, and the improve cycle's: pin and unpin (a pinned tool is never
 * rewritten automatically), rollback (an earlier version becomes current again), archive (kept on
 * disk and in history, no longer offered), the announcement of a promotion, and the hand-over of
 * regression cases from an archived tool to its replacement. Every change is audited; promotions,
 * rollbacks and archives are also posted to the alert webhook (services/control/alerts.ts), which
 * never fails the change it reports.
 *
 * The version a call runs is the index's (tools.current_version, read by every toolGate), and the
 * folder's `current` pointer follows it in the same transaction (store.setCurrent): a rollback is
 * seen by the very next call, with no restart and no cache to clear.
 */

export class RollbackRefusedError extends PermanentError {
  constructor(name: string, why: string, fix: string, details: Record<string, unknown> = {}) {
    super(`cannot roll back ${name}: ${why}`, 'ROLLBACK_REFUSED', fix, { tool: name, ...details });
  }
}

/** Who acts, and the key that makes a retried activity audit (and alert) once. */
export interface ActorOptions {
  /** a person (FORGE_USER / the OS user) or the workflow acting on its own, e.g. 'improve' */
  by: string;
  reason?: string;
  workflowId?: string;
  /** default: <workflowId>:<kind> with a workflow id, else unique per call */
  idempotencyKey?: string;
}

export interface PinResult {
  name: string;
  pinned: boolean;
  /** false when it already was */
  changed: boolean;
}

export interface RollbackResult {
  name: string;
  from: number | null;
  to: number;
  /** false when `to` already was current: nothing was written, audited or posted */
  changed: boolean;
  /**
   * the tool's registry status after the rollback: a quarantine is lifted (rolling back is a
   * person's repair, and the trust ladder reads the current version's own calls), else unchanged
   */
  status: ToolStatus;
  auditId: number | null;
  alert: AlertDelivery | null;
}

export interface ArchiveResult {
  name: string;
  previousStatus: ToolStatus;
  /** the version that was current, still current in the index (history and folders are kept) */
  version: number | null;
  /** false when it already was archived */
  changed: boolean;
  auditId: number | null;
  alert: AlertDelivery | null;
}

export interface PromotionInput {
  tool: string;
  fromVersion: number | null;
  toVersion: number;
  /** why: the evaluator's reason, what the gate showed */
  reason: string;
  workflowId: string;
  by?: string;
  /** what a person may want beside the reason: the evaluation, the gate's summary */
  details?: Record<string, unknown>;
  idempotencyKey?: string;
}

export interface CopyCasesResult {
  from: string;
  to: string;
  /** the replacement's version the cases were attached to */
  version: number;
  copied: number;
  /** the test names given to the copies (`<from>: <test name>`) */
  cases: string[];
}

export interface AdminDeps {
  sql: Sql;
  store: Pick<Store, 'setCurrent' | 'repair' | 'events'>;
  alerts: Pick<Alerts, 'post'>;
  log: Logger;
}

export type Admin = ReturnType<typeof createAdmin>;

export function createAdmin(deps: AdminDeps) {
  const { sql, store, alerts, log } = deps;

  const keyFor = (kind: string, name: string, o: Pick<ActorOptions, 'workflowId' | 'idempotencyKey'>) =>
    o.idempotencyKey ?? (o.workflowId ? `${o.workflowId}:${kind}:${name}` : `${kind}:${name}:${randomUUID()}`);

  async function toolRow(name: string): Promise<ToolRow> {
    const [row] = await sql<ToolRow[]>`select * from tools where name = ${name}`;
    if (!row) throw new ToolNotFoundError(name);
    return row;
  }

  async function setPinned(name: string, pinned: boolean, o: ActorOptions): Promise<PinResult> {
    const [row] = await sql<{ previous: boolean }[]>`
      update tools t set pinned = ${pinned}, updated_at = now() from (select name, pinned as previous from tools where name = ${name} for update) old
      where t.name = old.name returning old.previous`;
    if (!row) throw new ToolNotFoundError(name);
    const changed = row.previous !== pinned;
    if (changed) {
      const kind = pinned ? 'pin' : 'unpin';
      await recordAudit(sql, {
        idempotencyKey: keyFor(kind, name, o),
        kind,
        tool: name,
        input: { by: o.by, reason: o.reason ?? null },
        reasoning: `${o.by} ${pinned ? 'pinned' : 'unpinned'} ${name}${o.reason ? `: ${o.reason}` : ''}${pinned ? ' (never rewritten automatically)' : ''}`,
        workflowId: o.workflowId,
      });
      log.info(`tool ${kind}ned`, { tool: name, by: o.by });
    }
    return { name, pinned, changed };
  }

  /**
   * Makes an earlier version current again: `to`, or by default the newest verified version before
   * the current one. Refused, with what to do instead, for a version that does not exist or failed
   * verification, for a tool with no earlier verified version, and for an archived tool.
   */
  async function rollback(name: string, o: ActorOptions & { to?: number }): Promise<RollbackResult> {
    const tool = await toolRow(name);
    const from = tool.current_version;
    if (tool.status === 'archived')
      throw new RollbackRefusedError(
        name,
        `it is archived${tool.archive_reason ? ` (${tool.archive_reason})` : ''} and no longer offered`,
        tool.replaced_by ? `use its replacement, ${tool.replaced_by}` : 'forge a replacement with: forge forge "<what the tool must do>"',
      );
    const versions = await sql<Pick<VersionRow, 'version' | 'status'>[]>`
      select version, status from tool_versions where name = ${name} order by version`;
    const history = `see its versions with: forge tools history ${name}`;
    let target: Pick<VersionRow, 'version' | 'status'> | undefined;
    if (o.to !== undefined) {
      target = versions.find((v) => v.version === o.to);
      if (!target)
        throw new RollbackRefusedError(name, `it has no v${o.to} (versions: ${versions.map((v) => `v${v.version}`).join(', ')})`, history, {
          version: o.to,
        });
      if (target.status === 'failed')
        throw new RollbackRefusedError(name, `v${o.to} failed verification and never ran`, `pick a verified version: ${history}`, {
          version: o.to,
        });
    } else {
      target = versions.filter((v) => v.status === 'verified' && (from === null || v.version < from)).at(-1);
      if (!target)
        throw new RollbackRefusedError(
          name,
          from === null ? 'it has no verified version' : `no verified version before the current v${from}`,
          `name the version with --to <version>: ${history}`,
        );
    }
    const to = target.version;
    if (to === from) return { name, from, to, changed: false, status: tool.status, auditId: null, alert: null };

    // What ran at v<to> is what was registered: a folder a person edited or removed since is restored first.
    await store.repair(name, to);
    await store.setCurrent(name, to);
    const status: ToolStatus = tool.status === 'quarantined' ? 'active' : tool.status;
    if (status !== tool.status) {
      await sql`update tools set status = ${status}, updated_at = now() where name = ${name} and status = 'quarantined'`;
      store.events.emit('status', { name, status });
    }
    const reason = o.reason ?? (o.to === undefined ? 'rolled back to the previous verified version' : `rolled back to v${to}`);
    const key = keyFor('rollback', name, o);
    const { id } = await recordAudit(sql, {
      idempotencyKey: key,
      kind: 'rollback',
      tool: name,
      version: to,
      input: { from, to, by: o.by, reason },
      output: { current: to, status, previousStatus: tool.status },
      reasoning: `${o.by} rolled ${name} back from ${from === null ? 'no current version' : `v${from}`} to v${to}: ${reason}`,
      workflowId: o.workflowId,
    });
    log.info('tool rolled back', { tool: name, from, to, by: o.by });
    const alert = await alerts.post({
      kind: 'rollback',
      tool: name,
      fromVersion: from,
      toVersion: to,
      reason,
      by: o.by,
      workflowId: o.workflowId,
      id: key,
    });
    return { name, from, to, changed: true, status, auditId: id, alert };
  }

  /**
   * Archives a tool: status 'archived', so discovery and search no longer offer it and the trust
   * gate refuses to run it; its versions, folders, history and metering stay. Does not look at
   * the pin: an automatic caller (the improve cycle) must not reach here for a pinned tool.
   */
  async function archiveTool(
    name: string,
    reason: string,
    o: Partial<ActorOptions> & { replacedBy?: string } = {},
  ): Promise<ArchiveResult> {
    const by = o.by ?? 'forge';
    const [row] = await sql.begin(async (tx) => {
      await lockTool(tx, name);
      return tx<{ previous: ToolStatus; version: number | null }[]>`
        update tools t set status = 'archived', archived_at = coalesce(t.archived_at, now()), archive_reason = ${reason},
          replaced_by = coalesce(${o.replacedBy ?? null}, t.replaced_by), updated_at = now()
        from (select name, status as previous from tools where name = ${name} for update) old
        where t.name = old.name returning old.previous, t.current_version as version`;
    });
    if (!row) throw new ToolNotFoundError(name);
    if (row.previous === 'archived')
      return { name, previousStatus: row.previous, version: row.version, changed: false, auditId: null, alert: null };
    store.events.emit('status', { name, status: 'archived' });
    const key = keyFor('archive', name, o);
    const { id } = await recordAudit(sql, {
      idempotencyKey: key,
      kind: 'archive',
      tool: name,
      ...(row.version === null ? {} : { version: row.version }),
      input: { by, reason, previousStatus: row.previous, replacedBy: o.replacedBy ?? null },
      reasoning: `${by} archived ${name} (was ${row.previous}): ${reason}`,
      workflowId: o.workflowId,
    });
    log.info('tool archived', { tool: name, by, reason });
    const alert = await alerts.post({
      kind: 'archive',
      tool: name,
      fromVersion: row.version,
      toVersion: row.version,
      reason,
      by,
      workflowId: o.workflowId,
      id: key,
      ...(o.replacedBy ? { details: { replacedBy: o.replacedBy } } : {}),
    });
    return { name, previousStatus: row.previous, version: row.version, changed: true, auditId: id, alert };
  }

  /**
   * Audits a promotion the improve cycle made (the new version is already current: registered with
   * makeCurrent, or setCurrent) and posts the alert. Keyed by the workflow id: a retried activity
   * audits once (the alert may repeat, with the same id).
   */
  async function recordPromotion(p: PromotionInput): Promise<{ auditId: number; alert: AlertDelivery }> {
    const by = p.by ?? 'improve';
    const key = p.idempotencyKey ?? `${p.workflowId}:promotion:${p.tool}`;
    const { id } = await recordAudit(sql, {
      idempotencyKey: key,
      kind: 'promotion',
      tool: p.tool,
      version: p.toVersion,
      input: { from: p.fromVersion, to: p.toVersion, by, reason: p.reason },
      output: { current: p.toVersion, ...(p.details ?? {}) },
      reasoning: `${by} promoted ${p.tool} ${p.fromVersion === null ? '' : `v${p.fromVersion} → `}v${p.toVersion}: ${p.reason}`,
      workflowId: p.workflowId,
    });
    const alert = await alerts.post({
      kind: 'promotion',
      tool: p.tool,
      fromVersion: p.fromVersion,
      toVersion: p.toVersion,
      reason: p.reason,
      by,
      workflowId: p.workflowId,
      id: key,
      ...(p.details ? { details: p.details } : {}),
    });
    return { auditId: id, alert };
  }

  /**
   * Hands an (archived) tool's regression cases to its replacement: every case of every version of
   * `from` (the newest version's, where names repeat), attached to `to`'s current version (or the
   * one given) as `<from>: <test name>`. Idempotent: a case already handed over is not copied
   * twice. When `from` is archived it records `to` as its replacement.
   */
  async function copyTestCases(from: string, to: string, o: Partial<ActorOptions> & { version?: number } = {}): Promise<CopyCasesResult> {
    const source = await toolRow(from);
    const target = await toolRow(to);
    const version = o.version ?? target.current_version;
    if (version === null)
      throw new PermanentError(
        `${to} has no current version to attach ${from}'s regression cases to`,
        'NO_CURRENT_VERSION',
        'register a verified version of the replacement first, or name the version',
        { from, to },
      );
    const inserted = await sql.begin(async (tx) => {
      await lockTool(tx, to);
      const [exists] = await tx`select 1 from tool_versions where name = ${to} and version = ${version}`;
      if (!exists) throw new ToolNotFoundError(to, version);
      const rows = await tx<{ test_name: string }[]>`
        insert into tool_test_cases (name, version, test_name, input, expected)
        select ${to}, ${version}, ${`${from}: `} || c.test_name, c.input, c.expected
        from (select distinct on (test_name) test_name, input, expected from tool_test_cases where name = ${from} order by test_name, version desc) c
        on conflict (name, version, test_name) do nothing
        returning test_name`;
      if (source.status === 'archived') await tx`update tools set replaced_by = ${to}, updated_at = now() where name = ${from}`;
      return rows.map((r) => r.test_name);
    });
    if (inserted.length) {
      const by = o.by ?? 'forge';
      await recordAudit(sql, {
        idempotencyKey: keyFor('inherit_cases', `${from}>${to}`, o),
        kind: 'inherit_cases',
        tool: to,
        version,
        input: { from, to, by },
        output: { cases: inserted },
        reasoning: `${to} v${version} inherited ${inserted.length} regression case(s) from ${from}${o.reason ? `: ${o.reason}` : ''}`,
        workflowId: o.workflowId,
      });
      log.info('regression cases inherited', { from, to, version, copied: inserted.length });
    }
    return { from, to, version, copied: inserted.length, cases: inserted.sort() };
  }

  return {
    pin: (name: string, o: ActorOptions) => setPinned(name, true, o),
    unpin: (name: string, o: ActorOptions) => setPinned(name, false, o),
    rollback,
    archiveTool,
    recordPromotion,
    copyTestCases,
  };
}
