import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { describeError, ForgeError, PermanentError } from '../../domain/errors.ts';
import type { CandidateImage } from '../../domain/evolve.ts';
import { NODE_PATH } from '../../domain/sandbox-image.ts';
import { type Logger, log as rootLog } from '../log.ts';
import { CHECK_ARTEFACTS, treeHashOf } from './workspace.ts';

/**
 * Forge's worker image, built from a source tree: the evolve cycle's candidate (issue 11), and the
 * image part 2 runs the production control worker from (`forge up`). No registry is reachable, so
 * nothing is pulled; two layers keep a harness patch's build to seconds:
 *
 *   base   forge-worker-base:<key>  node, the shared libraries it and the native addons load, /etc
 *          basics and node_modules at /app/node_modules, imported from a tar (`docker import`, as the
 *          sandbox image is), keyed by package-lock.json and the node binary;
 *   tree   forge-worker:<tree hash>  FROM the base, the tree's source at /app, labelled with the
 *          hash. An image with that tag and label is the build: building the same tree again is a no-op.
 *
 * The image runs `node --import tsx workers/main.ts` as an unprivileged user, role control by default
 * (workflows, the model, Postgres; never the Docker socket), configured by the environment alone.
 */

/** What goes into an image's tar (infra/sandbox-image/tar.ts TarEntry, which the worker injects). */
export type RootfsEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; mode?: number; data: Buffer }
  | { kind: 'hostFile'; path: string; mode?: number; source: string; size: number }
  | { kind: 'symlink'; path: string; target: string };

/** The provisioning pieces the build reuses from infra/ (injected by the worker: services do not import infra). */
export interface ImageKit {
  /** node at NODE_PATH, the libraries it loads, the name-service modules, /etc/passwd with the unprivileged user */
  nodeRootfs(nodeBinary: string): RootfsEntry[];
  /** the shared libraries a binary or native addon loads (ldd); throws for a file of another platform */
  sharedLibraries(file: string): string[];
  /** a ustar stream of the entries */
  tar(entries: RootfsEntry[]): Readable;
}

export const WORKER_IMAGE_REPO = 'forge-worker';
export const WORKER_BASE_REPO = 'forge-worker-base';
export const LABEL_WORKER = 'forge.worker';
export const LABEL_TREE = 'forge.worker.tree';
export const LABEL_BASE = 'forge.worker.base';
/** The image's user: the sandbox rootfs's unprivileged `forge` (infra/sandbox-image.ts SANDBOX_UID). */
export const WORKER_UID = 10001;
/**
 * The writable /tmp a worker container needs on a read-only root: HOME and tsx's cache live there,
 * and @swc/core (the workflow bundler's compiler) copies its native addon into it before loading it,
 * so it must allow exec (Docker's tmpfs default is noexec).
 */
export const WORKER_TMPFS = { '/tmp': 'rw,exec,nosuid,nodev,size=512m,mode=1777' };
/**
 * The local embedding model's folder (services/config.ts modelsDir), read-only at the same path as on
 * the host, so a worker container searches by meaning as the host does; none when it is not there
 * (the worker then searches by words, saying so once).
 */
export function modelsMount(dir: string | undefined): { Type: 'bind'; Source: string; Target: string; ReadOnly: true }[] {
  return dir && existsSync(dir) ? [{ Type: 'bind', Source: dir, Target: dir, ReadOnly: true }] : [];
}

/** Where the tree lives in the image; node_modules beside it. */
export const APP_DIR = '/app';
/** Bump when the base's layout changes in a way its key would not show. */
const BASE_LAYOUT = '1';
/** Bump when what a tree's image holds beyond the tree changes (its shipped workflow bundle): older images are rebuilt. */
const TREE_LAYOUT = '2';
const LABEL_TREE_LAYOUT = 'forge.worker.layout';

export const workerImageTag = (treeHash: string) => `${WORKER_IMAGE_REPO}:${treeHash}`;

/** The scratch tree the evolve cycle's checks left for a candidate (services/evolution/workspace.ts checkPatch). */
export const candidateTreeDir = (home: string, candidateId: string) => path.join(home, 'evolve', candidateId, 'tree');

export class CandidateTreeError extends PermanentError {
  constructor(message: string, code: string, fix: string, details: Record<string, unknown>) {
    super(message, code, fix, details);
  }
}

export class WorkerImageError extends ForgeError {
  constructor(tag: string, step: string, reason: string) {
    super(
      `could not build the worker image ${tag} (${step}): ${reason}`,
      'WORKER_IMAGE_FAILED',
      'check that dockerd runs (docker info) and has disk space, and that the node binary and node_modules are readable',
      { tag, step },
    );
  }
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function inspectOrNull(docker: Docker, ref: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/** Waits for a build or import stream to end; the engine reports failures inside the stream. */
function followStream(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
      const failed = events?.find((e) => e.error || e.errorDetail);
      if (err) reject(err);
      else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error ?? 'the engine reported an error'));
      else resolve();
    });
  });
}

function parentsOf(file: string): string[] {
  const out: string[] = [];
  for (let d = path.posix.dirname(file); d !== '/' && d !== '.'; d = path.posix.dirname(d)) out.unshift(d);
  return out;
}

/** Every entry under a host folder as it goes into the image under `at`: folders, files (modes kept), symlinks (targets kept). */
async function folderEntries(source: string, at: string, skip: (rel: string) => boolean = () => false): Promise<RootfsEntry[]> {
  const out: RootfsEntry[] = [{ kind: 'dir', path: at, mode: 0o755 }];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(source, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skip(r)) continue;
      const host = path.join(source, r);
      const inImage = `${at}/${r}`;
      if (e.isSymbolicLink()) out.push({ kind: 'symlink', path: inImage, target: await fs.readlink(host) });
      else if (e.isDirectory()) {
        out.push({ kind: 'dir', path: inImage, mode: 0o755 });
        await walk(r);
      } else if (e.isFile()) {
        const st = await fs.stat(host);
        out.push({ kind: 'hostFile', path: inImage, source: host, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
      }
    }
  };
  await walk('');
  return out;
}

/** The native addons (.node) under node_modules, whose libraries the base must carry too. */
async function nativeAddons(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && e.name.endsWith('.node')) found.push(p);
    }
  };
  await walk(dir);
  return found;
}

/**
 * ONNX Runtime's package carries its native library for six platforms (~250 MB); the image runs one
 * (linux, this machine's architecture): the others stay out of the base.
 */
function otherPlatform(rel: string): boolean {
  const m = /^onnxruntime-node\/bin\/napi-v\d+\/([^/]+)\/([^/]+)$/.exec(rel);
  return m !== null && `${m[1]}/${m[2]}` !== `linux/${process.arch}`;
}

/** An ELF file's machine (x86-64, aarch64, …), or null for anything else (another OS's addon). */
async function elfMachine(file: string): Promise<number | null> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(20);
    const { bytesRead } = await fh.read(head, 0, 20, 0);
    return bytesRead === 20 && head.readUInt32BE(0) === 0x7f454c46 ? head.readUInt16LE(18) : null;
  } finally {
    await fh.close();
  }
}

export interface WorkerImageDeps {
  docker: Docker;
  kit: ImageKit;
  nodeBinary?: string;
  log?: Logger;
}

export interface BuiltWorkerImage extends CandidateImage {
  tag: string;
  base: { tag: string; key: string; built: boolean; ms: number };
  ms: number;
}

export function createWorkerImages(deps: WorkerImageDeps) {
  const { docker, kit } = deps;
  const nodeBinary = deps.nodeBinary ?? process.execPath;
  const log = deps.log ?? rootLog;

  /** The base's key: the lockfile, the node binary (version, size, time) and the layout. */
  async function baseKey(tree: string): Promise<string> {
    const lock = await fs.readFile(path.join(tree, 'package-lock.json')).catch(() => {
      throw new CandidateTreeError(`${tree} has no package-lock.json`, 'WORKER_TREE_INVALID', 'build from a full copy of the repository', {
        tree,
      });
    });
    const node = await fs.stat(await fs.realpath(nodeBinary));
    return sha(`layout:${BASE_LAYOUT}\nnode:${process.version}:${node.size}:${node.mtimeMs}\nlock:${sha(lock)}\n`).slice(0, 32);
  }

  async function baseEntries(modules: string): Promise<RootfsEntry[]> {
    const entries = kit.nodeRootfs(nodeBinary);
    const have = new Set(entries.map((e) => e.path));
    // Native addons may load libraries node itself does not (another platform's addon is skipped).
    const machine = await elfMachine(await fs.realpath(nodeBinary));
    for (const addon of await nativeAddons(modules)) {
      if ((await elfMachine(addon)) !== machine) continue;
      let libs: string[];
      try {
        libs = kit.sharedLibraries(addon);
      } catch {
        continue;
      }
      for (const lib of libs) {
        if (have.has(lib)) continue;
        for (const d of parentsOf(lib)) {
          if (!have.has(d)) entries.push({ kind: 'dir', path: d, mode: 0o755 });
          have.add(d);
        }
        const real = await fs.realpath(lib);
        entries.push({ kind: 'hostFile', path: lib, source: real, size: (await fs.stat(real)).size, mode: 0o755 });
        have.add(lib);
      }
    }
    entries.push({ kind: 'dir', path: APP_DIR, mode: 0o755 });
    entries.push(
      ...(await folderEntries(
        modules,
        `${APP_DIR}/node_modules`,
        (rel) => rel === '.cache' || rel.endsWith('/.cache') || otherPlatform(rel),
      )),
    );
    return entries;
  }

  /**
   * The base for a tree, imported when no image carries its key. Imported under a name of its own and
   * then tagged, so two builds at once both end with a complete base (the later tag wins; both are equal).
   */
  async function ensureBase(tree: string): Promise<BuiltWorkerImage['base']> {
    const started = performance.now();
    const key = await baseKey(tree);
    const tag = `${WORKER_BASE_REPO}:${key}`;
    const existing = await inspectOrNull(docker, tag);
    if (existing?.Config?.Labels?.[LABEL_BASE] === key) return { tag, key, built: false, ms: Math.round(performance.now() - started) };
    const modules = await fs.realpath(path.join(tree, 'node_modules')).catch(() => {
      throw new CandidateTreeError(
        `${tree} has no node_modules`,
        'WORKER_TREE_INVALID',
        'run npm install in the repository (the tree links its node_modules)',
        { tree },
      );
    });
    const scratchTag = `${key}-import-${process.pid}-${Date.now()}`;
    let step = 'list node and node_modules';
    try {
      const entries = await baseEntries(modules);
      step = 'import the base';
      const changes = [
        `LABEL ${LABEL_BASE}=${key}`,
        'ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp FORGE_WORKER_ROLE=control',
        `WORKDIR ${APP_DIR}`,
        `USER ${WORKER_UID}:${WORKER_UID}`,
        `CMD ["${NODE_PATH}", "--import", "tsx", "workers/main.ts"]`,
      ];
      const stream = await docker.importImage(kit.tar(entries), { repo: WORKER_BASE_REPO, tag: scratchTag, changes });
      await followStream(docker, stream);
      step = 'tag the base';
      await docker.getImage(`${WORKER_BASE_REPO}:${scratchTag}`).tag({ repo: WORKER_BASE_REPO, tag: key });
    } catch (err) {
      throw new WorkerImageError(tag, step, describeError(err));
    } finally {
      // Only the scratch name goes: the image stays under its key.
      await docker
        .getImage(`${WORKER_BASE_REPO}:${scratchTag}`)
        .remove()
        .catch(() => {});
    }
    const ms = Math.round(performance.now() - started);
    log.info('worker base image built', { tag, ms });
    return { tag, key, built: true, ms };
  }

  /**
   * The worker image of a tree on disk whose hash is `treeHash`. The tree is hashed again first: an
   * image labelled with a hash holds exactly the tree that hash names (a tree changed after its checks
   * is refused, never built).
   */
  async function buildTreeImage(input: { tree: string; treeHash: string }): Promise<BuiltWorkerImage> {
    const started = performance.now();
    const { tree, treeHash } = input;
    const tag = workerImageTag(treeHash);
    const stat = await fs.stat(tree).catch(() => null);
    if (!stat?.isDirectory())
      throw new CandidateTreeError(
        `no tree at ${tree}`,
        'CANDIDATE_TREE_MISSING',
        "the evolve cycle's checks write it (checkHarnessPatch): re-run the cycle; a sandbox worker on another host than the control worker must share FORGE_HOME",
        { tree },
      );
    const { hash, files } = await treeHashOf(tree, CHECK_ARTEFACTS);
    if (hash !== treeHash)
      throw new CandidateTreeError(
        `the tree at ${tree} hashes to ${hash.slice(0, 12)}, not ${treeHash.slice(0, 12)}: it changed after its checks`,
        'CANDIDATE_TREE_CHANGED',
        'run the checks again on the tree (a new evolve attempt); a tree is built only as it was checked',
        { tree, expected: treeHash, actual: hash },
      );
    const base = await ensureBase(tree);
    const existing = await inspectOrNull(docker, tag);
    const labels = existing?.Config?.Labels ?? {};
    if (existing && labels[LABEL_TREE] === treeHash && labels[LABEL_BASE] === base.key && labels[LABEL_TREE_LAYOUT] === TREE_LAYOUT)
      return { image: tag, tag, digest: existing.Id, reused: true, base, ms: Math.round(performance.now() - started) };

    const dockerfile = [
      `FROM ${base.tag}`,
      `COPY tree/ ${APP_DIR}/`,
      // The tree's workflow bundle, made once here rather than by every container of the image at
      // its start (a replay's candidate, the deployed worker): seconds of each one's start.
      'USER 0:0',
      `RUN ["${NODE_PATH}", "--import", "tsx", "workers/prebundle.ts"]`,
      `USER ${WORKER_UID}:${WORKER_UID}`,
      `LABEL ${LABEL_WORKER}="1" ${LABEL_TREE}="${treeHash}" ${LABEL_BASE}="${base.key}" ${LABEL_TREE_LAYOUT}="${TREE_LAYOUT}"`,
      '',
    ].join('\n');
    const context: RootfsEntry[] = [
      { kind: 'file', path: 'Dockerfile', data: Buffer.from(dockerfile), mode: 0o644 },
      { kind: 'dir', path: 'tree', mode: 0o755 },
    ];
    const dirs = new Set<string>();
    for (const f of files) {
      for (const d of parentsOf(`tree/${f}`)) {
        if (d === 'tree' || dirs.has(d)) continue;
        dirs.add(d);
        context.push({ kind: 'dir', path: d, mode: 0o755 });
      }
      const st = await fs.stat(path.join(tree, f));
      context.push({ kind: 'hostFile', path: `tree/${f}`, source: path.join(tree, f), size: st.size, mode: 0o644 });
    }
    try {
      // The legacy builder: FROM a local image needs no registry, and the context is this tar alone.
      const stream = await docker.buildImage(kit.tar(context) as unknown as NodeJS.ReadableStream, { t: tag, rm: true, forcerm: true });
      await followStream(docker, stream);
    } catch (err) {
      throw new WorkerImageError(tag, 'build the tree layer', describeError(err));
    }
    const built = await docker.getImage(tag).inspect();
    const ms = Math.round(performance.now() - started);
    log.info('worker image built', { tag, digest: built.Id, ms, baseBuilt: base.built, baseMs: base.ms });
    return { image: tag, tag, digest: built.Id, reused: false, base, ms };
  }

  return { ensureBase, buildTreeImage };
}

export type WorkerImages = ReturnType<typeof createWorkerImages>;
