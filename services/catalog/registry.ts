import path from 'node:path';
import type { QualityPolicy } from '../../domain/quality.ts';
import type { LexicalPolicy, RankingPolicy } from '../../domain/ranking.ts';
import { type Alerts, createAlerts } from '../control/alerts.ts';
import type { Sql } from '../db.ts';
import { type Logger, log as rootLog } from '../log.ts';
import { createAdmin } from './admin.ts';
import { type AuditInput, recordAudit } from './audit.ts';
import type { Embedder } from './embeddings.ts';
import { createFolders } from './folders.ts';
import { createMetering } from './metering.ts';
import { createQuality } from './quality.ts';
import { createRecovery } from './recovery.ts';
import { createSearch, type DensePolicy } from './search.ts';
import { createStore, type StoreHooks } from './store.ts';

/**
 * The tool registry: one object over the catalog's modules, so callers hold one handle.
 *   folders.ts   the catalog on disk (version folders, the `current` pointer, scratch space)
 *   store.ts     versions as folders + rows: registration, promotion, status, history
 *   recovery.ts  sweeping what a crash mid-registration left behind
 *   search.ts    discovery: lexical + dense evidence, re-ranked (domain/ranking.ts)
 *   metering.ts  invocations, stats and the trust level
 *   audit.ts     the audit log, written and read
 *   quality.ts   the evaluator over a tool's recent calls (domain/quality.ts)
 *   admin.ts     pin/unpin, rollback, archive, promotions announced, regression cases inherited
 * The watcher (watcher.ts) sits on top of this object; embeddings.ts is the dense provider.
 */

export interface RegistryOptions {
  sql: Sql;
  /** the tools directory, e.g. <FORGE_HOME>/tools */
  root: string;
  embedder?: Embedder;
  /** absent: the harness's (harness.policy.retrieval.dense) */
  densePolicy?: DensePolicy;
  rankingPolicy?: RankingPolicy;
  lexicalPolicy?: LexicalPolicy;
  /** absent: the harness's (harness.policy.quality) */
  qualityPolicy?: QualityPolicy;
  /** where promotions, rollbacks and archives are posted; absent: FORGE_ALERT_WEBHOOK, when set */
  alerts?: Pick<Alerts, 'post'>;
  logger?: Logger;
  hooks?: StoreHooks;
}

export type Registry = ReturnType<typeof createRegistry>;

export function createRegistry(opts: RegistryOptions) {
  const { sql } = opts;
  const root = path.resolve(opts.root);
  const log = (opts.logger ?? rootLog).child({ component: 'registry' });

  const folders = createFolders(root, log);
  const metering = createMetering({ sql });
  const search = createSearch({
    sql,
    embedder: opts.embedder,
    densePolicy: opts.densePolicy,
    rankingPolicy: opts.rankingPolicy,
    lexicalPolicy: opts.lexicalPolicy,
    log,
  });
  const store = createStore({ sql, folders, index: search, stats: metering.stats, log, hooks: opts.hooks });
  const { recover } = createRecovery({ sql, folders, log });
  const quality = createQuality({ sql, policy: opts.qualityPolicy });
  const admin = createAdmin({ sql, store, alerts: opts.alerts ?? createAlerts({ logger: log }), log });

  return {
    root,
    events: store.events,
    registerVersion: store.registerVersion,
    setCurrent: store.setCurrent,
    getCurrent: store.getCurrent,
    list: store.list,
    show: store.show,
    history: store.history,
    setStatus: store.setStatus,
    recordInvocation: metering.recordInvocation,
    recordAudit: (input: AuditInput) => recordAudit(sql, input),
    stats: metering.stats,
    search: search.search,
    repair: store.repair,
    recover,
    /** the registered content of a version (the index's copy), for the watcher and for restores */
    versionRecord: store.versionRecord,
    scoreTool: quality.scoreTool,
    scoreAll: quality.scoreAll,
    pin: admin.pin,
    unpin: admin.unpin,
    rollback: admin.rollback,
    archiveTool: admin.archiveTool,
    recordPromotion: admin.recordPromotion,
    copyTestCases: admin.copyTestCases,
  };
}
