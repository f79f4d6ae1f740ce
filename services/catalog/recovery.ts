import fsp from 'node:fs/promises';
import path from 'node:path';
import { toolNameSchema } from '../../domain/tool.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Folders } from './folders.ts';
import { lockTool, type ToolRow } from './store.ts';

/**
 * Recovery of half-written versions: what a crash between the store's file writes and its commit
 * leaves behind (store.ts describes the protocol), swept at worker start.
 */
export function createRecovery(deps: { sql: Sql; folders: Folders; log: Logger }) {
  const { sql, folders, log } = deps;
  const { root, toolDir, scratch, readPointer, writePointer, sweep } = folders;

  /**
   * Brings the files back in line with the committed index after a crash: scratch space emptied,
   * version folders without a row moved to .trash, every pointer naming the committed current
   * version. Safe to run at any time (it takes each tool's lock).
   */
  async function recover(): Promise<{ swept: string[]; pointersFixed: string[] }> {
    const swept: string[] = [];
    const pointersFixed: string[] = [];
    await fsp.mkdir(root, { recursive: true });
    await fsp.rm(scratch('.tmp'), { recursive: true, force: true });
    for (const entry of await fsp.readdir(root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !toolNameSchema.safeParse(entry.name).success) continue;
      const name = entry.name;
      await sql.begin(async (tx) => {
        await lockTool(tx, name);
        const [tool] = await tx<ToolRow[]>`select * from tools where name = ${name}`;
        const versions = new Set(
          (await tx<{ version: number }[]>`select version from tool_versions where name = ${name}`).map((r) => r.version),
        );
        for (const sub of await fsp.readdir(toolDir(name), { withFileTypes: true })) {
          const m = /^v(\d+)$/.exec(sub.name);
          if (sub.isDirectory() && m && !versions.has(Number(m[1]))) {
            await sweep(path.join(toolDir(name), sub.name), 'no committed row');
            swept.push(`${name}/${sub.name}`);
          }
        }
        const want = tool?.current_version ?? null;
        if ((await readPointer(name)) !== want) {
          await writePointer(name, want);
          pointersFixed.push(name);
        }
        if (!tool && (await fsp.readdir(toolDir(name))).length === 0) await fsp.rmdir(toolDir(name));
      });
    }
    if (swept.length || pointersFixed.length) log.warn('registry recovered', { swept, pointersFixed });
    return { swept, pointersFixed };
  }

  return { recover };
}
