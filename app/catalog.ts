import type { ForgeConfig } from '../domain/config.ts';
import { embedderFor } from '../services/catalog/embeddings.ts';
import { createRegistry, type Registry } from '../services/catalog/registry.ts';
import { toolsDir } from '../services/config.ts';
import { createAlerts } from '../services/control/alerts.ts';
import type { Sql } from '../services/db.ts';
import { withDb } from './db.ts';

// The regression gate's report as forge tools history shows it (app/improve.ts, which also exports it, loads the Temporal client).
export { type GateReport, gateReportSchema } from '../domain/improve.ts';

// Catalog queries are read-only, so they work while Forge is frozen. So do a person's levers on
// the catalog (pin, unpin, rollback, archive): they run no tool, and a rollback is what a person
// reaches for in the middle of an incident, frozen or not.

function withRegistry<T>(cfg: ForgeConfig, fn: (registry: Registry) => Promise<T>): Promise<T> {
  return withDb(cfg, (sql: Sql) =>
    // The embedder too: a rollback makes another version's description current, and its vector must follow.
    fn(
      createRegistry({
        sql,
        root: toolsDir(cfg),
        embedder: embedderFor(cfg),
        alerts: createAlerts({ url: cfg.FORGE_ALERT_WEBHOOK ?? null }),
      }),
    ),
  );
}

/** The catalog, with each tool's usage and trust level; archived tools only with `all`. */
export function listTools(cfg: ForgeConfig, opts: { all?: boolean } = {}) {
  return withRegistry(cfg, async (registry) => {
    const tools = (await registry.list()).filter((t) => opts.all || t.status !== 'archived');
    return Promise.all(tools.map(async (t) => ({ ...t, stats: await registry.stats(t.name) })));
  });
}

export type ToolListing = Awaited<ReturnType<typeof listTools>>[number];

/** One tool: its current version's manifest, folder and stats. */
export function showTool(cfg: ForgeConfig, name: string) {
  return withRegistry(cfg, (registry) => registry.show(name));
}

/** Every version of a tool, with the diff of each to the one before and whether its folder drifted. */
export function toolHistory(cfg: ForgeConfig, name: string) {
  return withRegistry(cfg, (registry) => registry.history(name));
}

/** The evaluator's reading of one tool, or of every tool that is not archived (domain/quality.ts). */
export function scoreTools(cfg: ForgeConfig, name?: string) {
  return withRegistry(cfg, async (registry) => (name ? [await registry.scoreTool(name)] : await registry.scoreAll()));
}

export type ToolScoreListing = Awaited<ReturnType<typeof scoreTools>>[number];

/** Pins a tool (never rewritten automatically) or unpins it; audited. */
export function setToolPinned(cfg: ForgeConfig, input: { name: string; pinned: boolean; by: string; reason?: string }) {
  return withRegistry(cfg, (registry) =>
    input.pinned
      ? registry.pin(input.name, { by: input.by, reason: input.reason })
      : registry.unpin(input.name, { by: input.by, reason: input.reason }),
  );
}

/** Makes an earlier version current again (default: the previous verified one); audited and alerted. */
export function rollbackTool(cfg: ForgeConfig, input: { name: string; to?: number; by: string; reason?: string }) {
  return withRegistry(cfg, (registry) => registry.rollback(input.name, { to: input.to, by: input.by, reason: input.reason }));
}

/** Archives a tool by hand: kept on disk and in history, no longer offered; audited and alerted. */
export function archiveToolByHand(cfg: ForgeConfig, input: { name: string; by: string; reason: string }) {
  return withRegistry(cfg, (registry) => registry.archiveTool(input.name, input.reason, { by: input.by }));
}
