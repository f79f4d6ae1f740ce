import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import * as esbuild from 'esbuild';
import { describeError, ForgeError } from '../domain/errors.ts';
import { NODE_PATH, RUNNER_DIR, RUNNER_PATH, SANDBOX_PATH_ENV, TESTKIT_FILE, ZOD_FILE } from '../runner/protocol.ts';
import { log } from '../services/log.ts';
import { bundleTestkitModule, bundleZodModule, zodEnglishOnly } from '../services/sandbox/esbuild-plugins.ts';
import { type TarEntry, tarStream } from './sandbox-image/tar.ts';

/**
 * Forge's sandbox base image, built locally (no registry is reachable): a minimal
 * rootfs holding the host's own `node`, the shared libraries it needs, a non-root
 * user and the runner bundle, imported with the Engine API's `docker import`.
 * The image carries a label with the hash of what went in, so a changed runner (or
 * node) rebuilds it and an unchanged one costs one bundle + one inspect.
 */
export const SANDBOX_UID = 10001;
export const HASH_LABEL = 'forge.sandbox-image.hash';
/** Bump when the rootfs layout changes in a way the runner hash would not show. */
const LAYOUT_VERSION = '1';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BUILD_DIR = path.join(here, 'sandbox-image', 'build');
/** runner.mjs is the judge (the container's command); judged.mjs the process it runs judged code in. */
const RUNNER_ENTRIES = {
  runner: path.join(here, '..', 'runner', 'main.ts'),
  judged: path.join(here, '..', 'runner', 'judged-entry.ts'),
};

export interface RunnerFile {
  name: string;
  code: Buffer;
}

export class SandboxImageError extends ForgeError {
  constructor(tag: string, step: string, reason: string) {
    super(
      `could not build the sandbox image ${tag} (${step}): ${reason}`,
      'SANDBOX_IMAGE_FAILED',
      'check that dockerd runs (docker info) and that the host node binary and its libraries are readable; see the log above',
      { tag, step },
    );
  }
}

/**
 * The runner's ESM files for /opt/forge: the two entries and the chunks they share (zod), with what
 * only some jobs need (undici for proxied calls, the MCP SDK for serve) split into chunks loaded on
 * first use, so neither process pays at start-up for what its job may not need. The banner gives
 * CommonJS dependencies (ajv, undici) the `require` that ESM output lacks.
 * Beside them zod.mjs (runner/protocol.ts ZOD_FILE), zod alone, which the bundles of tools and tests
 * import: read-only in the image and in its hash, so the judged code cannot change it and a new zod
 * rebuilds the image. The judge does not load it (its zod is in its own chunks). And testkit.mjs
 * (TESTKIT_FILE), the testkit alone, which test bundles import, likewise.
 */
export async function bundleRunner(outdir = BUILD_DIR): Promise<{ dir: string; files: RunnerFile[] }> {
  await mkdir(outdir, { recursive: true });
  // Built alongside the runner: ensureSandboxImage runs at every start of a worker or CLI.
  const [out, zodCode, testkitCode] = await Promise.all([
    esbuild.build({
      entryPoints: RUNNER_ENTRIES,
      outdir,
      entryNames: '[name]',
      chunkNames: 'chunk-[hash]',
      outExtension: { '.js': '.mjs' },
      splitting: true,
      write: false,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
      plugins: [zodEnglishOnly],
      banner: { js: "import { createRequire as __forgeRequire } from 'node:module'; const require = __forgeRequire(import.meta.url);" },
    }),
    bundleZodModule(path.join(here, '..')),
    bundleTestkitModule(path.join(here, '..', 'runner', 'testkit.ts')),
  ]);
  const zod = { name: ZOD_FILE, code: zodCode };
  const testkit = { name: TESTKIT_FILE, code: testkitCode };
  const files = [...out.outputFiles.map((f) => ({ name: path.basename(f.path), code: Buffer.from(f.contents) })), zod, testkit].sort(
    (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  for (const f of files) {
    // Write-then-rename: test files and workers may bundle at the same moment.
    const target = path.join(outdir, f.name);
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, f.code);
    await rename(tmp, target);
  }
  // Chunks of earlier builds: the image takes the files returned here, the folder is for reading.
  const current = new Set(files.map((f) => f.name));
  for (const name of await readdir(outdir)) {
    if (/^chunk-[A-Z0-9]+\.mjs$/.test(name) && !current.has(name)) await rm(path.join(outdir, name), { force: true });
  }
  return { dir: outdir, files };
}

/**
 * One build at a time per tag across processes (parallel test files, a worker and the
 * CLI): a lock directory, taken over when older than a build could possibly take.
 */
async function withBuildLock<T>(tag: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(BUILD_DIR, `.build-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`);
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 3 * 60_000) await rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`another process holds ${lock}; remove it if no build is running`);
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** The shared libraries `ldd` lists for a binary (absolute paths as the loader looks them up). */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs];
}

/**
 * glibc loads the name-service modules with dlopen, so ldd does not list them; without
 * them uid/host look-ups misbehave. Taken from libc's own directory when present.
 */
function nssLibraries(libs: string[]): string[] {
  const libc = libs.find((l) => /\/libc\.so\.\d+$/.test(l));
  if (!libc) return [];
  const dir = path.dirname(libc);
  return ['libnss_files.so.2', 'libnss_dns.so.2', 'libresolv.so.2'].map((n) => path.join(dir, n)).filter((p) => existsSync(p));
}

const text = (s: string) => Buffer.from(s, 'utf8');

/** Every directory on the way to `file`, parents first. */
function parents(file: string): string[] {
  const out: string[] = [];
  for (let d = path.dirname(file); d !== '/'; d = path.dirname(d)) out.unshift(d);
  return out;
}

export function rootfsEntries(nodeBinary: string, runner: RunnerFile[]): TarEntry[] {
  const libs = sharedLibraries(nodeBinary);
  const hostFiles = [...new Set([...libs, ...nssLibraries(libs)])].map((p) => ({ at: p, source: realpathSync(p) }));
  hostFiles.push({ at: NODE_PATH, source: realpathSync(nodeBinary) });
  const dirs = new Set<string>(['/etc', '/tmp', RUNNER_DIR, '/usr/local/bin']);
  for (const f of [...hostFiles.map((h) => h.at), RUNNER_PATH]) for (const d of parents(f)) dirs.add(d);
  const entries: TarEntry[] = [...dirs].sort().map((d) => ({ kind: 'dir' as const, path: d, mode: d === '/tmp' ? 0o1777 : 0o755 }));
  for (const h of hostFiles) {
    entries.push({ kind: 'hostFile', path: h.at, source: h.source, size: statSync(h.source).size, mode: 0o755 });
  }
  entries.push(
    ...runner.map((f) => ({ kind: 'file' as const, path: `${RUNNER_DIR}/${f.name}`, data: f.code, mode: 0o444 })),
    {
      kind: 'file',
      path: '/etc/passwd',
      data: text(`root:x:0:0:root:/root:/sbin/nologin\nforge:x:${SANDBOX_UID}:${SANDBOX_UID}:forge sandbox:/tmp:/sbin/nologin\n`),
    },
    { kind: 'file', path: '/etc/group', data: text(`root:x:0:\nforge:x:${SANDBOX_UID}:\n`) },
    { kind: 'file', path: '/etc/nsswitch.conf', data: text('passwd: files\ngroup: files\nhosts: files dns\n') },
  );
  return entries;
}

export function imageHash(runner: RunnerFile[], nodeBinary: string): string {
  const nodeStat = statSync(realpathSync(nodeBinary));
  const hash = createHash('sha256').update(`layout:${LAYOUT_VERSION}\nnode:${process.version}:${nodeStat.size}:${nodeStat.mtimeMs}\n`);
  for (const f of runner) hash.update(`${f.name}\n`).update(f.code);
  return hash.digest('hex');
}

function splitTag(tag: string): { repo: string; tag: string } {
  const colon = tag.lastIndexOf(':');
  if (colon > tag.lastIndexOf('/')) return { repo: tag.slice(0, colon), tag: tag.slice(colon + 1) };
  return { repo: tag, tag: 'latest' };
}

async function inspectOrNull(docker: Docker, tag: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(tag).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

async function importRootfs(docker: Docker, tag: string, hash: string, entries: TarEntry[]): Promise<void> {
  const { repo, tag: version } = splitTag(tag);
  // Imported images have no config: these `changes` give them labels, a user and a safe default command.
  const changes = [
    `LABEL ${HASH_LABEL}=${hash} forge.sandbox-image=1`,
    `ENV PATH=${SANDBOX_PATH_ENV} HOME=/tmp`,
    `USER ${SANDBOX_UID}:${SANDBOX_UID}`,
    'WORKDIR /tmp',
    `CMD ["${NODE_PATH}", "${RUNNER_PATH}", "idle"]`,
  ];
  const stream = await docker.importImage(tarStream(entries), { repo, tag: version, changes });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
      const failed = err ?? events.find((e) => e.error);
      if (failed) reject(new Error(err ? err.message : String((failed as { error?: string }).error)));
      else resolve();
    });
  });
}

export async function ensureSandboxImage(
  docker: Docker,
  opts: { tag: string; force?: boolean; nodeBinary?: string },
): Promise<{ tag: string; built: boolean; imageId: string }> {
  const nodeBinary = opts.nodeBinary ?? process.execPath;
  const started = performance.now();
  let step = 'bundle the runner';
  try {
    const { files } = await bundleRunner();
    const hash = imageHash(files, nodeBinary);
    step = 'inspect the existing image';
    const current = (info: Docker.ImageInspectInfo | null) => !opts.force && info?.Config?.Labels?.[HASH_LABEL] === hash;
    const existing = await inspectOrNull(docker, opts.tag);
    if (existing && current(existing)) return { tag: opts.tag, built: false, imageId: existing.Id };
    if (!opts.force && fromRegistry(opts.tag)) {
      step = 'pull the image';
      const pulled = await pullQuietly(docker, opts.tag);
      if (pulled && current(pulled)) return { tag: opts.tag, built: false, imageId: pulled.Id };
    }
    return await withBuildLock(opts.tag, async () => {
      // Another process may have built it while we waited for the lock.
      const now = await inspectOrNull(docker, opts.tag);
      if (now && current(now) && now.Id !== existing?.Id) return { tag: opts.tag, built: false, imageId: now.Id };
      step = 'import the rootfs';
      await importRootfs(docker, opts.tag, hash, rootfsEntries(nodeBinary, files));
      const fresh = await docker.getImage(opts.tag).inspect();
      if (now && now.Id !== fresh.Id) await removeQuietly(docker, now.Id);
      log.info('sandbox image built', {
        tag: opts.tag,
        imageId: fresh.Id,
        hash: hash.slice(0, 12),
        ms: Math.round(performance.now() - started),
      });
      return { tag: opts.tag, built: true, imageId: fresh.Id };
    });
  } catch (err) {
    if (err instanceof SandboxImageError) throw err;
    throw new SandboxImageError(opts.tag, step, describeError(err));
  }
}

/** A tag that names a registry host (registry.example.com/forge-sandbox:1, localhost:5000/…) can be pulled. */
export function fromRegistry(tag: string): boolean {
  const first = tag.split('/')[0] ?? '';
  return tag.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
}

/**
 * Pulls when a registry answers; the pulled image is used only if it carries this runner's hash.
 * No registry (as on these machines) is not an error: the image is then built locally.
 */
async function pullQuietly(docker: Docker, tag: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    const stream = await docker.pull(tag);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
    );
    return await inspectOrNull(docker, tag);
  } catch (err) {
    log.info('sandbox image not pulled; building it locally', { tag, reason: describeError(err).slice(0, 200) });
    return null;
  }
}

/** The old image may still back a running container; it then stays until that one is gone. */
async function removeQuietly(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getImage(id).remove();
  } catch (err) {
    log.debug('old sandbox image kept', { id, reason: describeError(err) });
  }
}
