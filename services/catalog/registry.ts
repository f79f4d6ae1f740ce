import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { unifiedDiff } from '../../domain/diff.ts';
import { ForgeError, InvalidInputError, describeError } from '../../domain/errors.ts';
import {
  cosine,
  lexicalSimilarity,
  rerank,
  type LexicalPolicyInput,
  type RankingPolicyInput,
  type TermEvidence,
} from '../../domain/ranking.ts';
import { apiSpecSchema, toolManifestSchema, toolNameSchema, type ApiSpec, type ToolManifest } from '../../domain/tool.ts';
import { toolStatusSchema, trustLevel, type ToolStatus, type TrustLevel } from '../../domain/trust.ts';
import type postgres from 'postgres';
import type { Sql } from '../db.ts';
import { log as rootLog, type Logger } from '../log.ts';

/**
 * The tool registry. Each tool version is a folder a person can read and edit:
 *   <root>/<name>/v<N>/{tool.ts, tool.test.ts, manifest.json, api-spec.json?}
 *   <root>/<name>/current            "v<N>\n", replaced by write-temp-then-rename
 * and Postgres indexes and meters them (infra/migrations/030_registry.sql).
 *
 * Registration protocol — a version exists once its row commits:
 *   1. under a per-tool advisory lock, an idempotency key already seen returns its version;
 *   2. the folder is written under <root>/.tmp and renamed into place whole (never half visible);
 *   3. rows are inserted; 4. the `current` pointer is swapped; 5. commit.
 * Any failure before the commit removes the folder and restores the pointer; a crash in between
 * leaves debris that the next registration of that tool (or `recover()`) sweeps.
 */

export const FILES = { source: 'tool.ts', tests: 'tool.test.ts', manifest: 'manifest.json', apiSpec: 'api-spec.json' } as const;
const POINTER = 'current';
/** first key of pg_advisory_xact_lock(int, int): the registry's lock space (the second is the tool) */
const LOCK_SPACE = 727301;

// ---------------------------------------------------------------------------------------------
// Errors

export class ToolNotFoundError extends ForgeError {
  constructor(name: string, version?: number) {
    const what = version === undefined ? `tool ${name}` : `tool ${name} v${version}`;
    super(`${what} is not registered`, 'TOOL_NOT_FOUND', 'list the registered tools with `forge tools list`', { tool: name, version });
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

/** zod at the boundary, failures as a typed error that names what was invalid. */
function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(what, parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  return parsed.data;
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
  idempotencyKey: z.string().min(1).max(512),
});
export type RegisterInput = z.input<typeof registerInputSchema>;

export const invocationInputSchema = z.object({
  idempotencyKey: z.string().min(1).max(512),
  tool: toolNameSchema,
  version: z.number().int().min(1),
  operation: z.string().min(1).max(200).default('run'),
  input: z.unknown(),
  output: z.unknown().optional(),
  latencyMs: z.number().int().min(0),
  success: z.boolean(),
  error: z.string().optional(),
  workflowId: z.string().optional(),
});
export type InvocationInput = z.input<typeof invocationInputSchema>;

export const auditInputSchema = z.object({
  idempotencyKey: z.string().min(1).max(512),
  kind: z.string().min(1).max(100),
  tool: z.string().optional(),
  version: z.number().int().min(1).optional(),
  input: z.unknown().optional(),
  output: z.unknown().optional(),
  latencyMs: z.number().int().min(0).optional(),
  reasoning: z.string().optional(),
  taskContext: z.unknown().optional(),
  workflowId: z.string().optional(),
});
export type AuditInput = z.input<typeof auditInputSchema>;

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
  /** ISO timestamps: these results cross Temporal's JSON data converter */
  createdAt: string;
  updatedAt: string;
}

export interface ToolStats {
  tool: string;
  invocations: number;
  successes: number;
  successRate: number;
  avgLatencyMs: number | null;
  successfulRunsByOperation: Record<string, number>;
  lastFailureAt: string | null;
  lastError: string | null;
  level: TrustLevel;
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
}

export interface ToolDetails extends ToolSummary {
  manifest: ToolManifest | null;
  dir: string | null;
  files: string[];
  stats: ToolStats;
}

export interface SearchHit {
  name: string;
  version: number;
  description: string;
  status: ToolStatus;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  inputSchema: Record<string, unknown>;
  /** 0..1 retrieval similarity (lexical, blended with dense cosine when embeddings exist) */
  similarity: number;
  /** the re-ranked score: 0.7 similarity + 0.2 success rate + 0.1 usage */
  score: number;
  components: { lexical: number; fullText: number; dense: number | null };
  invocations: number;
  successes: number;
  level: TrustLevel;
}

export interface SearchOptions {
  limit?: number;
  includeInactive?: boolean;
}

/** Dense embeddings are optional: without an embedder, search is full-text + trigram only. */
export interface Embedder {
  model: string;
  embed(texts: string[]): Promise<number[][]>;
}

export type RegisterStage = 'staged' | 'placed' | 'indexed' | 'pointed';

export interface RegistryOptions {
  sql: Sql;
  /** the tools directory, e.g. <FORGE_HOME>/tools */
  root: string;
  embedder?: Embedder;
  /** weight of the dense cosine when a tool has an embedding (the rest is lexical) */
  denseWeight?: number;
  rankingPolicy?: RankingPolicyInput;
  lexicalPolicy?: LexicalPolicyInput;
  logger?: Logger;
  /** called at each registration stage before the commit; a throw aborts it (fault injection in tests) */
  hooks?: { onStage?(stage: RegisterStage, info: { name: string; version: number }): void | Promise<void> };
}

export type Registry = ReturnType<typeof createRegistry>;

// ---------------------------------------------------------------------------------------------
// Helpers

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** JSON with sorted keys, so equal values hash equal. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

/** One hash over a version folder's files, the same whether computed from memory or from disk. */
export function filesHash(files: Record<string, string>): string {
  const names = Object.keys(files).sort();
  return sha256(names.map((n) => `${n}\0${sha256(files[n]!)}`).join('\n'));
}

function renderFiles(source: string, tests: string, manifest: ToolManifest, apiSpec: ApiSpec | undefined | null): Record<string, string> {
  const files: Record<string, string> = {
    [FILES.source]: source,
    [FILES.tests]: tests,
    [FILES.manifest]: JSON.stringify(manifest, null, 2) + '\n',
  };
  if (apiSpec) files[FILES.apiSpec] = JSON.stringify(apiSpec, null, 2) + '\n';
  return files;
}

/** Words requests use that the schema knows: parameter names (split) and their descriptions. */
function paramsSearchText(inputSchema: Record<string, unknown>): string {
  const props = inputSchema.properties;
  if (typeof props !== 'object' || props === null) return '';
  return Object.entries(props as Record<string, unknown>)
    .map(([key, prop]) => {
      const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ');
      const desc = typeof prop === 'object' && prop !== null && typeof (prop as { description?: unknown }).description === 'string' ? (prop as { description: string }).description : '';
      return `${words} ${desc}`.trim();
    })
    .join('. ');
}

function parsePointer(text: string): number | null {
  const m = /^v?(\d+)\s*$/.exec(text.trim());
  return m ? Number(m[1]) : null;
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function exists(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => null)) !== null;
}

export const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

/** Replaces a file atomically: readers see the old content or the new, never a mix. */
async function writeFileAtomic(file: string, content: string): Promise<void> {
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

interface VersionRow {
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
  created_at: Date;
}

interface ToolRow {
  name: string;
  current_version: number | null;
  status: ToolStatus;
  description: string;
  side_effect: 'read' | 'write';
  destructive: boolean;
  created_at: Date;
  updated_at: Date;
}

// ---------------------------------------------------------------------------------------------
// The registry

export function createRegistry(opts: RegistryOptions) {
  const { sql } = opts;
  const root = path.resolve(opts.root);
  const log = (opts.logger ?? rootLog).child({ component: 'registry' });
  const events = new EventEmitter<{ version: [{ name: string; version: number; current: boolean }]; status: [{ name: string; status: ToolStatus }] }>();
  const denseWeight = opts.denseWeight ?? 0.6;

  const toolDir = (name: string) => path.join(root, toolNameSchema.parse(name));
  const versionDir = (name: string, version: number) => path.join(toolDir(name), `v${version}`);
  const pointerFile = (name: string) => path.join(toolDir(name), POINTER);
  const scratch = (kind: '.tmp' | '.trash' | '.rejected') => path.join(root, kind);

  async function stage(stageName: RegisterStage, name: string, version: number): Promise<void> {
    await opts.hooks?.onStage?.(stageName, { name, version });
  }

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
    const to = path.join(scratch('.trash'), `${path.basename(path.dirname(dir))}-${path.basename(dir)}-${stamp()}-${randomBytes(2).toString('hex')}`);
    await fsp.rename(dir, to);
    log.warn('moved debris out of the registry', { from: dir, to, why });
  }

  async function lockTool(tx: Sql | postgres.TransactionSql, name: string): Promise<void> {
    await tx`select pg_advisory_xact_lock(${LOCK_SPACE}, hashtext(${name}))`;
  }

  // -------------------------------------------------------------------------------------------

  async function registerVersion(input: RegisterInput): Promise<RegisterResult> {
    const req = parseInput(registerInputSchema, input, 'tool registration');
    const { name } = req;
    const makeCurrent = req.makeCurrent ?? req.status === 'verified';
    const sourceSha256 = sha256(req.source);
    const embedding = makeCurrent ? await embedTool(name, req.manifest.description) : null;

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

        const [nextRow] = await tx<{ next: number }[]>`select coalesce(max(version), 0)::int + 1 as next from tool_versions where name = ${name}`;
        const version = nextRow!.next;
        at = 'validate';
        const manifest = parseInput(toolManifestSchema, {
          ...req.manifest,
          name,
          version,
          createdAt: new Date().toISOString(),
          createdBy: req.createdBy,
          sourceSha256,
          status: req.status,
        }, 'tool manifest');
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
        if (makeCurrent) {
          await tx`insert into tools (name, current_version, description, side_effect, destructive, search_params)
                   values (${name}, ${version}, ${description}, ${manifest.sideEffect}, ${manifest.destructive}, ${params})
                   on conflict (name) do update set current_version = excluded.current_version, description = excluded.description,
                     side_effect = excluded.side_effect, destructive = excluded.destructive, search_params = excluded.search_params, updated_at = now()`;
        } else {
          await tx`insert into tools (name, current_version, description, side_effect, destructive, search_params)
                   values (${name}, null, ${description}, ${manifest.sideEffect}, ${manifest.destructive}, ${params})
                   on conflict (name) do nothing`;
        }
        await tx`insert into tool_versions (name, version, manifest, source, tests, api_spec, source_sha256, files_sha256, dir, status, created_by, idempotency_key)
                 values (${name}, ${version}, ${tx.json(manifest as never)}, ${req.source}, ${req.tests}, ${req.apiSpec ? tx.json(req.apiSpec as never) : null},
                         ${sourceSha256}, ${filesHash(files)}, ${dir}, ${req.status}, ${req.createdBy}, ${req.idempotencyKey})`;
        for (const tc of req.testCases) {
          await tx`insert into tool_test_cases (name, version, test_name, input, expected)
                   values (${name}, ${version}, ${tc.name}, ${tx.json((tc.input ?? null) as never)}, ${tc.expected === undefined ? null : tx.json(tc.expected as never)})`;
        }
        if (embedding) {
          await tx`insert into tool_embeddings (name, version, model, embedding) values (${name}, ${version}, ${embedding.model}, ${embedding.vector})
                   on conflict (name, model) do update set version = excluded.version, embedding = excluded.embedding, created_at = now()`;
        }
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
  async function undo(u: { name: string; placedDir: string | null; createdToolDir: boolean; pointerBefore: { written: boolean; raw: string | null } }): Promise<boolean> {
    let clean = true;
    const steps: [string, () => Promise<void>][] = [
      ['restore pointer', async () => {
        if (!u.pointerBefore.written) return;
        if (u.pointerBefore.raw === null) await fsp.rm(pointerFile(u.name), { force: true });
        else await writeFileAtomic(pointerFile(u.name), u.pointerBefore.raw);
      }],
      ['remove folder', async () => {
        if (u.placedDir) await fsp.rm(u.placedDir, { recursive: true, force: true });
      }],
      ['remove empty tool folder', async () => {
        if (u.createdToolDir) await fsp.rmdir(toolDir(u.name)).catch(() => {});
      }],
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

  async function embedTool(name: string, description: string): Promise<{ model: string; vector: number[] } | null> {
    if (!opts.embedder) return null;
    try {
      const [vector] = await opts.embedder.embed([`${name.replace(/_/g, ' ')}: ${description}`]);
      return vector ? { model: opts.embedder.model, vector } : null;
    } catch (err) {
      // Embeddings only sharpen search; a tool is still findable by its words.
      log.warn('embedding failed; the tool is indexed for full-text search only', { tool: name, error: describeError(err) });
      return null;
    }
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
      for (const [file, content] of Object.entries(want)) if (have[file] !== content) await writeFileAtomic(path.join(row.dir, file), content);
      for (const file of Object.keys(have)) if (!(file in want)) await fsp.rm(path.join(row.dir, file), { force: true });
    }
    log.info('version folder restored to its registered content', { tool: name, version });
    return 'restored';
  }

  /** Promotes (or rolls back to) a registered version: the regression gate's and a person's lever. */
  async function setCurrent(name: string, version: number): Promise<void> {
    let pointerBefore: { written: boolean; raw: string | null } = { written: false, raw: null };
    try {
      await sql.begin(async (tx) => {
        await lockTool(tx, name);
        const [row] = await tx<VersionRow[]>`select * from tool_versions where name = ${name} and version = ${version}`;
        if (!row) throw new ToolNotFoundError(name, version);
        if (row.status === 'failed') throw new ForgeError(`${name} v${version} failed verification and cannot be made current`, 'VERSION_FAILED', 'register a fixed version instead');
        const m = row.manifest;
        await tx`update tools set current_version = ${version}, description = ${m.description}, side_effect = ${m.sideEffect},
                 destructive = ${m.destructive}, search_params = ${paramsSearchText(m.inputSchema)}, updated_at = now() where name = ${name}`;
        pointerBefore = { written: true, raw: await readIfExists(pointerFile(name)) };
        await writePointer(name, version);
      });
    } catch (err) {
      await undo({ name, placedDir: null, createdToolDir: false, pointerBefore });
      throw err;
    }
    await refreshEmbedding(name, version);
    events.emit('version', { name, version, current: true });
  }

  /** After a promotion the embedding must describe the version now current (best-effort). */
  async function refreshEmbedding(name: string, version: number): Promise<void> {
    if (!opts.embedder) return;
    const row = await versionRow(name, version);
    const embedding = row ? await embedTool(name, row.manifest.description) : null;
    if (!embedding) return;
    await sql`insert into tool_embeddings (name, version, model, embedding) values (${name}, ${version}, ${embedding.model}, ${embedding.vector})
              on conflict (name, model) do update set version = excluded.version, embedding = excluded.embedding, created_at = now()`;
  }

  async function getCurrent(name: string): Promise<CurrentTool | null> {
    const [row] = await sql<(VersionRow & { tool_status: ToolStatus })[]>`
      select v.*, t.status as tool_status from tools t join tool_versions v on v.name = t.name and v.version = t.current_version
      where t.name = ${name}`;
    if (!row) return null;
    return { name: row.name, version: row.version, dir: row.dir, status: row.tool_status, manifest: toolManifestSchema.parse(row.manifest) };
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
      stats: await stats(name),
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
        diff: previous ? unifiedDiff(previous.source, row.source, { fromLabel: `${name}/v${previous.version}/${FILES.source}`, toLabel: `${name}/v${row.version}/${FILES.source}` }) : '',
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

  // -------------------------------------------------------------------------------------------
  // Metering

  async function recordInvocation(input: InvocationInput): Promise<{ id: number; created: boolean }> {
    const r = parseInput(invocationInputSchema, input, 'invocation record');
    const inputHash = sha256(stableStringify(r.input));
    const outputHash = r.output === undefined ? null : sha256(stableStringify(r.output));
    const inserted = await sql<{ id: string }[]>`
      insert into invocations (idempotency_key, tool, version, operation, input_hash, output_hash, latency_ms, success, error, workflow_id)
      values (${r.idempotencyKey}, ${r.tool}, ${r.version}, ${r.operation}, ${inputHash}, ${outputHash}, ${r.latencyMs}, ${r.success}, ${r.error ?? null}, ${r.workflowId ?? null})
      on conflict (idempotency_key) do nothing returning id`;
    if (inserted[0]) return { id: Number(inserted[0].id), created: true };
    const [existing] = await sql<{ id: string }[]>`select id from invocations where idempotency_key = ${r.idempotencyKey}`;
    return { id: Number(existing!.id), created: false };
  }

  async function recordAudit(input: AuditInput): Promise<{ id: number; created: boolean }> {
    const r = parseInput(auditInputSchema, input, 'audit record');
    const json = (v: unknown) => (v === undefined ? null : sql.json(v as never));
    const inserted = await sql<{ id: string }[]>`
      insert into audit_log (idempotency_key, kind, tool, version, input, output, latency_ms, reasoning, task_context, workflow_id)
      values (${r.idempotencyKey}, ${r.kind}, ${r.tool ?? null}, ${r.version ?? null}, ${json(r.input)}, ${json(r.output)}, ${r.latencyMs ?? null},
              ${r.reasoning ?? null}, ${json(r.taskContext)}, ${r.workflowId ?? null})
      on conflict (idempotency_key) do nothing returning id`;
    if (inserted[0]) return { id: Number(inserted[0].id), created: true };
    const [existing] = await sql<{ id: string }[]>`select id from audit_log where idempotency_key = ${r.idempotencyKey}`;
    return { id: Number(existing!.id), created: false };
  }

  async function stats(name: string): Promise<ToolStats> {
    const [agg] = await sql<{ invocations: number; successes: number; avg_latency: number | null; last_failure_at: Date | null }[]>`
      select count(*)::int as invocations, count(*) filter (where success)::int as successes,
             avg(latency_ms)::float8 as avg_latency, max(created_at) filter (where not success) as last_failure_at
      from invocations where tool = ${name}`;
    const ops = await sql<{ operation: string; n: number }[]>`
      select operation, count(*)::int as n from invocations where tool = ${name} and success group by operation order by operation`;
    const [lastErr] = await sql<{ error: string | null }[]>`
      select error from invocations where tool = ${name} and not success order by created_at desc, id desc limit 1`;
    const invocations = agg?.invocations ?? 0;
    const successes = agg?.successes ?? 0;
    return {
      tool: name,
      invocations,
      successes,
      successRate: invocations ? successes / invocations : 0,
      avgLatencyMs: agg?.avg_latency ?? null,
      successfulRunsByOperation: Object.fromEntries(ops.map((o) => [o.operation, o.n])),
      lastFailureAt: agg?.last_failure_at?.toISOString() ?? null,
      lastError: lastErr?.error ?? null,
      level: trustLevel({ invocations, successes }),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Discovery

  interface SearchRow {
    name: string;
    version: number;
    description: string;
    status: ToolStatus;
    side_effect: 'read' | 'write';
    destructive: boolean;
    input_schema: Record<string, unknown> | null;
    a_hits: string[];
    b_hits: string[];
    c_hits: string[];
    fuzzy: number[];
    full_text: number;
    invocations: number;
    successes: number;
  }

  /**
   * Hybrid retrieval. Postgres does the text work — stemming and stop words (to_tsvector), which of
   * the request's words each tool's weighted index holds, trigram word_similarity for misspellings,
   * ts_rank of websearch_to_tsquery for requests that name a tool outright — and the scores are
   * combined here (domain/ranking.ts), blended with dense cosine when embeddings exist, then
   * re-ranked by success rate and usage.
   */
  async function search(query: string, searchOpts: SearchOptions = {}): Promise<SearchHit[]> {
    const limit = searchOpts.limit ?? 5;
    const q = query.trim().slice(0, 2000);
    if (!q) return [];

    // The request's words with their lexemes, split by Postgres's own parser: stop words drop out,
    // and host names, URLs, paths, versions and numbers (values, not intent: "blog.example.net"
    // says nothing about blogs) are left out; hyphenated words count by their parts.
    const lexed = await sql<{ word: string; lexeme: string }[]>`
      select lower(token) as word, lexemes[1] as lexeme from ts_debug('english', ${q})
      where alias in ('asciiword', 'word', 'numword', 'hword_asciipart', 'hword_part', 'hword_numpart')
        and coalesce(array_length(lexemes, 1), 0) > 0
      limit 64`;
    const terms = new Map<string, string>(); // lexeme -> a raw word (for trigram matching)
    for (const { word, lexeme } of lexed) if (lexeme.length > 1 && !terms.has(lexeme)) terms.set(lexeme, word);
    const lexemes = [...terms.keys()];
    const rawWords = [...terms.values()];
    if (lexemes.length === 0) return [];

    const activeOnly = !searchOpts.includeInactive;
    const [countRow] = await sql<{ n: number }[]>`
      select count(*)::int as n from tools where current_version is not null and (${!activeOnly} or status = 'active')`;
    const n = countRow?.n ?? 0;
    const dfRows = await sql<{ word: string; ndoc: number }[]>`
      select word, ndoc from ts_stat(${`select search from tools where current_version is not null${activeOnly ? " and status = 'active'" : ''}`})
      where word = any(${lexemes}::text[])`;
    const df = new Map(dfRows.map((r) => [r.word, r.ndoc]));

    const rows = await sql<SearchRow[]>`
      with q as (select ${lexemes}::text[] as lex, ${rawWords}::text[] as words)
      select t.name, t.current_version as version, t.description, t.status, t.side_effect, t.destructive,
             v.manifest -> 'inputSchema' as input_schema,
             array(select l from unnest(q.lex) l where t.search @@ (quote_literal(l) || ':A')::tsquery) as a_hits,
             array(select l from unnest(q.lex) l where t.search @@ (quote_literal(l) || ':B')::tsquery) as b_hits,
             array(select l from unnest(q.lex) l where t.search @@ (quote_literal(l) || ':C')::tsquery) as c_hits,
             array(select word_similarity(w, t.trgm_text)::float8 from unnest(q.words) with ordinality as u(w, i) order by i) as fuzzy,
             ts_rank(t.search, websearch_to_tsquery('english', ${q}))::float8 as full_text,
             coalesce(s.invocations, 0)::int as invocations, coalesce(s.successes, 0)::int as successes
      from q, tools t
      join tool_versions v on v.name = t.name and v.version = t.current_version
      left join (select tool, count(*) as invocations, count(*) filter (where success) as successes from invocations group by tool) s on s.tool = t.name
      where (${!activeOnly} or t.status = 'active')
        and (t.search @@ to_tsquery('simple', array_to_string(array(select quote_literal(l) from unnest(q.lex) l), ' | '))
             or exists (select 1 from unnest(q.words) w where word_similarity(w, t.trgm_text) >= 0.5))`;

    const dense = await denseSimilarities(q, rows.map((r) => r.name));
    const scored = rows.map((r) => {
      const evidence: TermEvidence[] = lexemes.map((lex, i) => ({
        docFrequency: df.get(lex) ?? 0,
        inName: r.a_hits.includes(lex),
        inDescription: r.b_hits.includes(lex),
        inParams: r.c_hits.includes(lex),
        fuzzy: r.fuzzy[i] ?? 0,
      }));
      const lexical = lexicalSimilarity(evidence, n, opts.lexicalPolicy);
      const d = dense.get(r.name) ?? null;
      const similarity = d === null ? lexical : denseWeight * d + (1 - denseWeight) * lexical;
      return {
        name: r.name,
        version: r.version,
        description: r.description,
        status: r.status,
        sideEffect: r.side_effect,
        destructive: r.destructive,
        inputSchema: r.input_schema ?? {},
        similarity,
        components: { lexical, fullText: r.full_text, dense: d },
        invocations: r.invocations,
        successes: r.successes,
        level: trustLevel({ invocations: r.invocations, successes: r.successes }),
      };
    });
    return rerank(scored, opts.rankingPolicy)
      .slice(0, limit)
      .map(({ successRate: _s, usage: _u, ...hit }) => hit);
  }

  async function denseSimilarities(query: string, names: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!opts.embedder || names.length === 0) return out;
    const rows = await sql<{ name: string; embedding: number[] }[]>`
      select name, embedding from tool_embeddings where model = ${opts.embedder.model} and name = any(${names}::text[])`;
    if (rows.length === 0) return out;
    try {
      const [qv] = await opts.embedder.embed([query]);
      if (qv) for (const r of rows) out.set(r.name, cosine(qv, r.embedding.map(Number)));
    } catch (err) {
      log.warn('query embedding failed; searching by words only', { error: describeError(err) });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Recovery

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
        const versions = new Set((await tx<{ version: number }[]>`select version from tool_versions where name = ${name}`).map((r) => r.version));
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

  return {
    root,
    events,
    registerVersion,
    setCurrent,
    getCurrent,
    list,
    show,
    history,
    setStatus,
    recordInvocation,
    recordAudit,
    stats,
    search,
    repair,
    recover,
    /** the registered content of a version (the index's copy), for the watcher and for restores */
    versionRecord: async (name: string, version: number) => {
      const row = await versionRow(name, version);
      return row ? { dir: row.dir, filesSha256: row.files_sha256, manifest: row.manifest, apiSpec: row.api_spec } : null;
    },
  };
}
