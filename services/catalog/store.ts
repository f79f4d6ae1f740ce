import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type postgres from 'postgres';
import { z } from 'zod';
import { unifiedDiff } from '../../domain/diff.ts';
import { describeError, ForgeError } from '../../domain/errors.ts';
import { type ApiSpec, apiSpecSchema, type ToolManifest, toolManifestSchema, toolNameSchema } from '../../domain/tool.ts';
import { type ToolStatus, toolStatusSchema } from '../../domain/trust.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { exists, FILES, type Folders, filesHash, readIfExists, readVersionFiles, renderFiles, writeFileAtomic } from './folders.ts';
import { sha256 } from './hash.ts';
import { parseInput } from './input.ts';
import type { ToolStats } from './metering.ts';
import { paramsSearchText, type Search, valueKindsOf } from './search.ts';

/**
 * Tool versions: folders on disk (folders.ts) indexed by rows in Postgres
 * (infra/migrations/030_registry.sql) — registration, promotion, status, history.
 *
 * Registration protocol — a version exists once its row commits:
 *   1. under a per-tool advisory lock, an idempotency key already seen returns its version;
 *   2. the folder is written under <root>/.tmp and renamed into place whole (never half visible);
 *   3. rows are inserted; 4. the `current` pointer is swapped; 5. commit.
 * Any failure before the commit removes the folder and restores the pointer; a crash in between
 * leaves debris that the next registration of that tool (or recovery.ts) sweeps.
 */

/** first key of pg_advisory_xact_lock(int, int): the registry's lock space (the second is the tool) */
const LOCK_SPACE = 727301;

// ---------------------------------------------------------------------------------------------
// Errors

export class ToolNotFoundError extends ForgeError {
  constructor(name: string, version?: number) {
    const what = version === undefined ? `tool ${name}` : `tool ${name} v${version}`;
    super(
      `${what} is not registered`,
      'TOOL_NOT_FOUND',
      'list the registered tools with `forge tools ls` (archived ones with `forge tools ls --all`)',
      { tool: name, version },
    );
  }
}

export class IdempotencyConflictError extends ForgeError {
  constructor(key: string, existing: string) {
    super(
      `idempotency key ${key} was already used for ${existing} with different content`,
      'IDEMPOTENCY_CONFLICT',
      'derive idempotency keys from the workflow id and step, so one key means one registration',
      { idempotencyKey: key, existing },
    );
  }
}

export class RegistryWriteError extends ForgeError {
  constructor(name: string, stage: string, cause: unknown, clean: boolean) {
    super(
      `registering ${name} failed at ${stage}: ${describeError(cause)}; ` +
        (clean ? 'the catalog is unchanged' : 'nothing was committed, but files were left behind'),
      'REGISTRY_WRITE_FAILED',
      clean
        ? 'check that the registry directory is writable and Postgres is reachable, then retry'
        : 'run the registry recovery (recover()) to sweep them, then retry',
      { tool: name, stage, clean },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs (zod at the boundary; types inferred)

const versionStatusSchema = z.enum(['verified', 'experimental', 'failed']);
const createdBySchema = z.enum(['forge', 'rewrite', 'human']);

/** What a caller supplies of the manifest; the registry fills name, version, dates and hashes. */
export const manifestDraftSchema = toolManifestSchema.omit({
  name: true,
  version: true,
  createdAt: true,
  createdBy: true,
  sourceSha256: true,
  status: true,
});
export type ManifestDraft = z.input<typeof manifestDraftSchema>;

export const testCaseSchema = z.object({ name: z.string().min(1), input: z.unknown(), expected: z.unknown().optional() });

export const registerInputSchema = z.object({
  name: toolNameSchema,
  source: z.string().min(1),
  tests: z.string(),
  manifest: manifestDraftSchema,
  apiSpec: apiSpecSchema.optional(),
  testCases: z.array(testCaseSchema).default([]),
  createdBy: createdBySchema.default('forge'),
  status: versionStatusSchema.default('verified'),
  /** default: only verified versions become current; candidates wait for a promotion */
  makeCurrent: z.boolean().optional(),
  /** the regression gate's report on this version (a rewrite the improve cycle promotes), shown by history */
  gateReport: z.unknown().optional(),
  idempotencyKey: z.string().min(1).max(512),
});
export type RegisterInput = z.input<typeof registerInputSchema>;

// ---------------------------------------------------------------------------------------------
// Outputs

export interface RegisterResult {
  version: number;
  created: boolean;
  dir: string;
  current: boolean;
}

export interface CurrentTool {
  name: string;
  version: number;
  dir: string;
  status: ToolStatus;
  manifest: ToolManifest;
}

export interface ToolSummary {
  name: string;
  currentVersion: number | null;
  status: ToolStatus;
  description: string;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  versions: number;
  /** never rewritten automatically (forge tools pin) */
  pinned: boolean;
  /** archived: when and why, and the tool that replaced it once there is one */
  archivedAt: string | null;
  archiveReason: string | null;
  replacedBy: string | null;
  /** ISO timestamps: these results cross Temporal's JSON data converter */
  createdAt: string;
  updatedAt: string;
}

export interface HistoryEntry {
  version: number;
  status: 'verified' | 'experimental' | 'failed';
  createdBy: 'forge' | 'rewrite' | 'human';
  createdAt: string;
  sourceSha256: string;
  current: boolean;
  dir: string;
  /** whether the folder still holds what was registered */
  onDisk: 'same' | 'edited' | 'missing';
  /** unified diff of tool.ts against the previous version ('' for v1 or no change) */
  diff: string;
  /** the regression gate's report, for a version the improve cycle promoted; null otherwise */
  gateReport: unknown;
}

export interface ToolDetails extends ToolSummary {
  manifest: ToolManifest | null;
  dir: string | null;
  files: string[];
  stats: ToolStats;
}

export type RegisterStage = 'staged' | 'placed' | 'indexed' | 'pointed';

export interface StoreHooks {
  /** called at each registration stage before the commit; a throw aborts it (fault injection in tests) */
  onStage?(stage: RegisterStage, info: { name: string; version: number }): void | Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Rows

export interface VersionRow {
  name: string;
  version: number;
  manifest: ToolManifest;
  source: string;
  tests: string;
  api_spec: ApiSpec | null;
  source_sha256: string;
  files_sha256: string;
  dir: string;
  status: 'verified' | 'experimental' | 'failed';
  created_by: 'forge' | 'rewrite' | 'human';
  idempotency_key: string;
  gate_report: unknown;
  created_at: Date;
}

export interface ToolRow {
  name: string;
  current_version: number | null;
  status: ToolStatus;
  description: string;
  side_effect: 'read' | 'write';
  destructive: boolean;
  pinned: boolean;
  archived_at: Date | null;
  archive_reason: string | null;
  replaced_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Serializes a tool's writes (registration, promotion, recovery) until the transaction ends. */
export async function lockTool(tx: Sql | postgres.TransactionSql, name: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(${LOCK_SPACE}, hashtext(${name}))`;
}

// ---------------------------------------------------------------------------------------------
// The store

export interface StoreDeps {
  sql: Sql;
  folders: Folders;
  /** the search index's writes: embeddings of the version made current */
  index: Pick<Search, 'embedTool' | 'saveEmbedding' | 'refreshEmbedding'>;
  /** a tool's metered figures, for show() */
  stats(name: string): Promise<ToolStats>;
  log: Logger;
  hooks?: StoreHooks;
}

export type Store = ReturnType<typeof createStore>;

export function createStore(deps: StoreDeps) {
  const { sql, folders, index, log } = deps;
  const { toolDir, versionDir, pointerFile, readPointer, writePointer, placeFolder, sweep } = folders;
  const events = new EventEmitter<{
    version: [{ name: string; version: number; current: boolean }];
    status: [{ name: string; status: ToolStatus }];
  }>();

  async function stage(stageName: RegisterStage, name: string, version: number): Promise<void> {
    await deps.hooks?.onStage?.(stageName, { name, version });
  }

  async function registerVersion(input: RegisterInput): Promise<RegisterResult> {
    const req = parseInput(registerInputSchema, input, 'tool registration');
    const { name } = req;
    const makeCurrent = req.makeCurrent ?? req.status === 'verified';
    const sourceSha256 = sha256(req.source);
    const embedding = makeCurrent ? await index.embedTool(name, req.manifest.description) : null;

    // What has to be undone if the commit does not happen.
    let placedDir: string | null = null;
    let createdToolDir = false;
    let pointerBefore: { written: boolean; raw: string | null } = { written: false, raw: null };
    let at: RegisterStage | 'validate' | 'lock' = 'lock';

    try {
      type Outcome = { replayed: VersionRow } | { created: { version: number; dir: string } };
      const result = (await sql.begin(async (tx): Promise<Outcome> => {
        await lockTool(tx, name);
        const [replay] = await tx<VersionRow[]>`select * from tool_versions where idempotency_key = ${req.idempotencyKey}`;
        if (replay) return { replayed: replay };

        const [nextRow] = await tx<
          { next: number }[]
        >`select coalesce(max(version), 0)::int + 1 as next from tool_versions where name = ${name}`;
        const version = nextRow!.next;
        at = 'validate';
        const manifest = parseInput(
          toolManifestSchema,
          {
            ...req.manifest,
            name,
            version,
            createdAt: new Date().toISOString(),
            createdBy: req.createdBy,
            sourceSha256,
            status: req.status,
          },
          'tool manifest',
        );
        const files = renderFiles(req.source, req.tests, manifest, req.apiSpec);
        const dir = versionDir(name, version);

        at = 'staged';
        if (!(await exists(toolDir(name)))) {
          await fsp.mkdir(toolDir(name), { recursive: true });
          createdToolDir = true;
        }
        await stage('staged', name, version);
        // Under the lock, with no row for v<N>, a v<N> folder can only be an interrupted attempt's.
        await sweep(dir, `no committed row for ${name} v${version}`);
        await placeFolder(dir, files);
        placedDir = dir;
        at = 'placed';
        await stage('placed', name, version);

        at = 'indexed';
        const description = manifest.description;
        const params = paramsSearchText(manifest.inputSchema);
        const kinds = valueKindsOf(manifest.inputSchema);
        if (makeCurrent) {
          await tx`insert into tools (name, current_version, description, side_effect, destructive, search_params, value_kinds)
                   values (${name}, ${version}, ${description}, ${manifest.sideEffect}, ${manifest.destructive}, ${params}, ${kinds}::text[])
                   on conflict (name) do update set current_version = excluded.current_version, description = excluded.description,
                     side_effect = excluded.side_effect, destructive = excluded.destructive, search_params = excluded.search_params,
                     value_kinds = excluded.value_kinds, updated_at = now()`;
        } else {
          await tx`insert into tools (name, current_version, description, side_effect, destructive, search_params, value_kinds)
                   values (${name}, null, ${description}, ${manifest.sideEffect}, ${manifest.destructive}, ${params}, ${kinds}::text[])
                   on conflict (name) do nothing`;
        }
        await tx`insert into tool_versions (name, version, manifest, source, tests, api_spec, source_sha256, files_sha256, dir, status, created_by, idempotency_key, gate_report)
                 values (${name}, ${version}, ${tx.json(manifest as never)}, ${req.source}, ${req.tests}, ${req.apiSpec ? tx.json(req.apiSpec as never) : null},
                         ${sourceSha256}, ${filesHash(files)}, ${dir}, ${req.status}, ${req.createdBy}, ${req.idempotencyKey},
                         ${req.gateReport === undefined ? null : tx.json(req.gateReport as never)})`;
        for (const tc of req.testCases) {
          await tx`insert into tool_test_cases (name, version, test_name, input, expected)
                   values (${name}, ${version}, ${tc.name}, ${tx.json((tc.input ?? null) as never)}, ${tc.expected === undefined ? null : tx.json(tc.expected as never)})`;
        }
        if (embedding) await index.saveEmbedding(tx, name, version, embedding);
        await stage('indexed', name, version);

        if (makeCurrent) {
          at = 'pointed';
          pointerBefore = { written: true, raw: await readIfExists(pointerFile(name)) };
          await writePointer(name, version);
          await stage('pointed', name, version);
        }
        return { created: { version, dir } };
      })) as Outcome;

      if ('replayed' in result) return await replayed(result.replayed, req, sourceSha256);
      log.info('tool version registered', { tool: name, version: result.created.version, createdBy: req.createdBy, current: makeCurrent });
      events.emit('version', { name, version: result.created.version, current: makeCurrent });
      return { version: result.created.version, created: true, dir: result.created.dir, current: makeCurrent };
    } catch (err) {
      const clean = await undo({ name, placedDir, createdToolDir, pointerBefore });
      if (err instanceof ForgeError) throw err;
      throw new RegistryWriteError(name, at, err, clean);
    }
  }

  /** Rolls the files back after a registration that did not commit; never masks the first error. */
  async function undo(u: {
    name: string;
    placedDir: string | null;
    createdToolDir: boolean;
    pointerBefore: { written: boolean; raw: string | null };
  }): Promise<boolean> {
    let clean = true;
    const steps: [string, () => Promise<void>][] = [
      [
        'restore pointer',
        async () => {
          if (!u.pointerBefore.written) return;
          if (u.pointerBefore.raw === null) await fsp.rm(pointerFile(u.name), { force: true });
          else await writeFileAtomic(pointerFile(u.name), u.pointerBefore.raw);
        },
      ],
      [
        'remove folder',
        async () => {
          if (u.placedDir) await fsp.rm(u.placedDir, { recursive: true, force: true });
        },
      ],
      [
        'remove empty tool folder',
        async () => {
          if (u.createdToolDir) await fsp.rmdir(toolDir(u.name)).catch(() => {});
        },
      ],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        clean = false;
        log.error('could not undo a failed registration: recover() will sweep it', { tool: u.name, step: what, error: describeError(err) });
      }
    }
    return clean;
  }

  /**
   * The same key again: return what it created, and heal the files if a crash or a person left
   * them behind the index (folder missing, pointer stale).
   */
  async function replayed(row: VersionRow, req: z.infer<typeof registerInputSchema>, sourceSha256: string): Promise<RegisterResult> {
    if (row.name !== req.name || row.source_sha256 !== sourceSha256) {
      throw new IdempotencyConflictError(req.idempotencyKey, `${row.name} v${row.version}`);
    }
    await repair(row.name, row.version);
    const [tool] = await sql<ToolRow[]>`select * from tools where name = ${row.name}`;
    const current = tool?.current_version === row.version;
    if (current && (await readPointer(row.name)) !== row.version) await writePointer(row.name, row.version);
    return { version: row.version, created: false, dir: row.dir, current };
  }

  // -------------------------------------------------------------------------------------------

  async function versionRow(name: string, version: number): Promise<VersionRow | undefined> {
    const [row] = await sql<VersionRow[]>`select * from tool_versions where name = ${name} and version = ${version}`;
    return row;
  }

  /** Makes a version folder hold exactly what was registered (after a person's edit or a crash). */
  async function repair(name: string, version: number): Promise<'same' | 'restored'> {
    const row = await versionRow(name, version);
    if (!row) throw new ToolNotFoundError(name, version);
    const want = renderFiles(row.source, row.tests, row.manifest, row.api_spec);
    const have = await readVersionFiles(row.dir);
    if (have && filesHash(have) === row.files_sha256) return 'same';
    if (!have) {
      await fsp.mkdir(path.dirname(row.dir), { recursive: true });
      await placeFolder(row.dir, want);
    } else {
      for (const [file, content] of Object.entries(want))
        if (have[file] !== content) await writeFileAtomic(path.join(row.dir, file), content);
      for (const file of Object.keys(have)) if (!(file in want)) await fsp.rm(path.join(row.dir, file), { force: true });
    }
    log.info('version folder restored to its registered content', { tool: name, version });
    return 'restored';
  }

  /** Promotes (or rolls back to) a registered version: the regression gate's and a person's lever. */
  async function setCurrent(name: string, version: number): Promise<void> {
    let pointerBefore: { written: boolean; raw: string | null } = { written: false, raw: null };
    let description = '';
    try {
      await sql.begin(async (tx) => {
        await lockTool(tx, name);
        const [row] = await tx<VersionRow[]>`select * from tool_versions where name = ${name} and version = ${version}`;
        if (!row) throw new ToolNotFoundError(name, version);
        if (row.status === 'failed')
          throw new ForgeError(
            `${name} v${version} failed verification and cannot be made current`,
            'VERSION_FAILED',
            'register a fixed version instead',
          );
        const m = row.manifest;
        description = m.description;
        await tx`update tools set current_version = ${version}, description = ${m.description}, side_effect = ${m.sideEffect},
                 destructive = ${m.destructive}, search_params = ${paramsSearchText(m.inputSchema)},
                 value_kinds = ${valueKindsOf(m.inputSchema)}::text[], updated_at = now() where name = ${name}`;
        pointerBefore = { written: true, raw: await readIfExists(pointerFile(name)) };
        await writePointer(name, version);
      });
    } catch (err) {
      await undo({ name, placedDir: null, createdToolDir: false, pointerBefore });
      throw err;
    }
    await index.refreshEmbedding(name, version, description);
    events.emit('version', { name, version, current: true });
  }

  async function getCurrent(name: string): Promise<CurrentTool | null> {
    const [row] = await sql<(VersionRow & { tool_status: ToolStatus })[]>`
      select v.*, t.status as tool_status from tools t join tool_versions v on v.name = t.name and v.version = t.current_version
      where t.name = ${name}`;
    if (!row) return null;
    return {
      name: row.name,
      version: row.version,
      dir: row.dir,
      status: row.tool_status,
      manifest: toolManifestSchema.parse(row.manifest),
    };
  }

  async function list(): Promise<ToolSummary[]> {
    const rows = await sql<(ToolRow & { versions: number })[]>`
      select t.*, (select count(*)::int from tool_versions v where v.name = t.name) as versions from tools t order by t.name`;
    return rows.map(summary);
  }

  function summary(r: ToolRow & { versions: number }): ToolSummary {
    return {
      name: r.name,
      currentVersion: r.current_version,
      status: r.status,
      description: r.description,
      sideEffect: r.side_effect,
      destructive: r.destructive,
      versions: r.versions,
      pinned: r.pinned,
      archivedAt: r.archived_at?.toISOString() ?? null,
      archiveReason: r.archive_reason,
      replacedBy: r.replaced_by,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
    };
  }

  async function show(name: string): Promise<ToolDetails> {
    const [row] = await sql<(ToolRow & { versions: number })[]>`
      select t.*, (select count(*)::int from tool_versions v where v.name = t.name) as versions from tools t where t.name = ${name}`;
    if (!row) throw new ToolNotFoundError(name);
    const current = row.current_version === null ? undefined : await versionRow(name, row.current_version);
    const files = current ? ((await fsp.readdir(current.dir).catch(() => [])) as string[]).sort() : [];
    return {
      ...summary(row),
      manifest: current ? toolManifestSchema.parse(current.manifest) : null,
      dir: current?.dir ?? null,
      files,
      stats: await deps.stats(name),
    };
  }

  async function history(name: string): Promise<HistoryEntry[]> {
    const [tool] = await sql<ToolRow[]>`select * from tools where name = ${name}`;
    if (!tool) throw new ToolNotFoundError(name);
    const rows = await sql<VersionRow[]>`select * from tool_versions where name = ${name} order by version`;
    const out: HistoryEntry[] = [];
    let previous: VersionRow | undefined;
    for (const row of rows) {
      const disk = await readVersionFiles(row.dir);
      out.push({
        version: row.version,
        status: row.status,
        createdBy: row.created_by,
        createdAt: row.created_at.toISOString(),
        sourceSha256: row.source_sha256,
        current: tool.current_version === row.version,
        dir: row.dir,
        onDisk: !disk ? 'missing' : filesHash(disk) === row.files_sha256 ? 'same' : 'edited',
        // Diffs come from the registered copies: a folder edited by hand is not what ran.
        diff: previous
          ? unifiedDiff(previous.source, row.source, {
              fromLabel: `${name}/v${previous.version}/${FILES.source}`,
              toLabel: `${name}/v${row.version}/${FILES.source}`,
            })
          : '',
        gateReport: row.gate_report ?? null,
      });
      previous = row;
    }
    return out;
  }

  async function setStatus(name: string, status: ToolStatus): Promise<{ previous: ToolStatus; status: ToolStatus }> {
    toolStatusSchema.parse(status);
    const [row] = await sql<{ previous: ToolStatus }[]>`
      update tools t set status = ${status}, updated_at = now() from (select name, status as previous from tools where name = ${name} for update) old
      where t.name = old.name returning old.previous`;
    if (!row) throw new ToolNotFoundError(name);
    if (row.previous !== status) {
      log.info('tool status changed', { tool: name, from: row.previous, to: status });
      events.emit('status', { name, status });
    }
    return { previous: row.previous, status };
  }

  /** the registered content of a version (the index's copy), for the watcher and for restores */
  async function versionRecord(name: string, version: number) {
    const row = await versionRow(name, version);
    return row ? { dir: row.dir, filesSha256: row.files_sha256, manifest: row.manifest, apiSpec: row.api_spec } : null;
  }

  return { events, registerVersion, setCurrent, getCurrent, list, show, history, setStatus, repair, versionRecord };
}
