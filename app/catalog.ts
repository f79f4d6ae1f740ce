import type { ForgeConfig } from '../domain/config.ts';
import { createRegistry, type Registry } from '../services/catalog/registry.ts';
import { toolsDir } from '../services/config.ts';
import type { Sql } from '../services/db.ts';
import { withDb } from './db.ts';

// Catalog queries: read-only, so they work while Forge is frozen.

function withRegistry<T>(cfg: ForgeConfig, fn: (registry: Registry) => Promise<T>): Promise<T> {
  return withDb(cfg, (sql: Sql) => fn(createRegistry({ sql, root: toolsDir(cfg) })));
}

/** Every tool in the catalog, with its usage and trust level. */
export function listTools(cfg: ForgeConfig) {
  return withRegistry(cfg, async (registry) => {
    const tools = await registry.list();
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
