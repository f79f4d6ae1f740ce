import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type ApiSpec, type ToolManifest, toolNameSchema } from '../../domain/tool.ts';
import type { Logger } from '../log.ts';
import { sha256 } from './hash.ts';

/**
 * The catalog on disk. Each tool version is a folder a person can read and edit:
 *   <root>/<name>/v<N>/{tool.ts, tool.test.ts, manifest.json, api-spec.json?}
 *   <root>/<name>/current            "v<N>\n", replaced by write-temp-then-rename
 * and beside the tools, scratch space: .tmp (folders being written), .trash (debris swept out),
 * .rejected (a person's edits that failed verification).
 */

export const FILES = { source: 'tool.ts', tests: 'tool.test.ts', manifest: 'manifest.json', apiSpec: 'api-spec.json' } as const;
const POINTER = 'current';

export const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

/** One hash over a version folder's files, the same whether computed from memory or from disk. */
export function filesHash(files: Record<string, string>): string {
  const names = Object.keys(files).sort();
  return sha256(names.map((n) => `${n}\0${sha256(files[n]!)}`).join('\n'));
}

/**
 * JSON with every object's keys sorted: the manifest comes back from a jsonb column with its keys
 * reordered, so only a canonical rendering lets a restored folder (repair) hash to what was
 * registered — otherwise the watcher takes the restore for a person's edit.
 */
function canonicalJson(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return JSON.stringify(sorted(value), null, 2) + '\n';
}

export function renderFiles(
  source: string,
  tests: string,
  manifest: ToolManifest,
  apiSpec: ApiSpec | undefined | null,
): Record<string, string> {
  const files: Record<string, string> = {
    [FILES.source]: source,
    [FILES.tests]: tests,
    [FILES.manifest]: canonicalJson(manifest),
  };
  if (apiSpec) files[FILES.apiSpec] = canonicalJson(apiSpec);
  return files;
}

function parsePointer(text: string): number | null {
  const m = /^v?(\d+)\s*$/.exec(text.trim());
  return m ? Number(m[1]) : null;
}

export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function exists(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => null)) !== null;
}

/** Replaces a file atomically: readers see the old content or the new, never a mix. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  await fsp.writeFile(tmp, content, { flag: 'wx' });
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** Reads the files of a version folder (the known ones), for hashing and for snapshots. */
export async function readVersionFiles(dir: string): Promise<Record<string, string> | null> {
  const files: Record<string, string> = {};
  for (const name of Object.values(FILES)) {
    const content = await readIfExists(path.join(dir, name));
    if (content !== null) files[name] = content;
  }
  return Object.keys(files).length ? files : null;
}

export type Folders = ReturnType<typeof createFolders>;

/** The paths under one catalog root, and the writes that keep them whole. */
export function createFolders(root: string, log: Logger) {
  const toolDir = (name: string) => path.join(root, toolNameSchema.parse(name));
  const versionDir = (name: string, version: number) => path.join(toolDir(name), `v${version}`);
  const pointerFile = (name: string) => path.join(toolDir(name), POINTER);
  const scratch = (kind: '.tmp' | '.trash' | '.rejected') => path.join(root, kind);

  async function readPointer(name: string): Promise<number | null> {
    const raw = await readIfExists(pointerFile(name));
    return raw === null ? null : parsePointer(raw);
  }

  async function writePointer(name: string, version: number | null): Promise<void> {
    if (version === null) await fsp.rm(pointerFile(name), { force: true });
    else await writeFileAtomic(pointerFile(name), `v${version}\n`);
  }

  /** Writes a complete folder beside the catalog, then moves it into place in one rename. */
  async function placeFolder(dest: string, files: Record<string, string>): Promise<void> {
    await fsp.mkdir(scratch('.tmp'), { recursive: true });
    const tmp = await fsp.mkdtemp(path.join(scratch('.tmp'), `${path.basename(path.dirname(dest))}-${path.basename(dest)}-`));
    try {
      for (const [file, content] of Object.entries(files)) await fsp.writeFile(path.join(tmp, file), content);
      await fsp.rename(tmp, dest);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Moves debris (a folder no committed row owns) out of the catalog, keeping it for inspection. */
  async function sweep(dir: string, why: string): Promise<void> {
    if (!(await exists(dir))) return;
    await fsp.mkdir(scratch('.trash'), { recursive: true });
    const to = path.join(
      scratch('.trash'),
      `${path.basename(path.dirname(dir))}-${path.basename(dir)}-${stamp()}-${randomBytes(2).toString('hex')}`,
    );
    await fsp.rename(dir, to);
    log.warn('moved debris out of the registry', { from: dir, to, why });
  }

  return { root, toolDir, versionDir, pointerFile, scratch, readPointer, writePointer, placeFolder, sweep };
}
