/**
 * The catalog as a live surface offers it (Forge's MCP server): the active tools with their current
 * version's manifest, and a cheap fingerprint of that list, so a server in another process than the
 * registry (whose events stay in-process) can poll it and tell its clients when the list changed.
 */
import { type ToolManifest, toolManifestSchema } from '../../domain/tool.ts';
import type { Sql } from '../db.ts';

export interface ActiveTool {
  name: string;
  version: number;
  manifest: ToolManifest;
}

/**
 * Changes exactly when the offered list does: a tool registered, promoted, rolled back,
 * quarantined, archived or restored (each changes a name, a current version or a status).
 */
export async function activeToolsFingerprint(sql: Sql): Promise<string> {
  const [row] = await sql<{ fp: string }[]>`
    select coalesce(string_agg(name || '@' || current_version, ',' order by name), '') as fp
    from tools where status = 'active' and current_version is not null`;
  return row?.fp ?? '';
}

/** Every active tool with its current version's manifest, by name. */
export async function activeTools(sql: Sql): Promise<ActiveTool[]> {
  const rows = await sql<{ name: string; version: number; manifest: unknown }[]>`
    select t.name, t.current_version as version, v.manifest
    from tools t join tool_versions v on v.name = t.name and v.version = t.current_version
    where t.status = 'active'
    order by t.name`;
  return rows.map((r) => ({ name: r.name, version: r.version, manifest: toolManifestSchema.parse(r.manifest) }));
}
