import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { unifiedDiff } from '../../domain/diff.ts';
import { HARNESS_TESTS_DIR, normalisePatchPath, scopeProblems } from '../../domain/evolve.ts';
import { writeFileAtomic } from '../catalog/folders.ts';

const run = promisify(execFile);

/**
 * The evolve cycle's workbench: the harness as it is now (what the coding agent sees), and a
 * scratch copy of the tree where a patch is applied and checked — scope on the whole tree, type
 * check, lint and the harness's own unit tests — before anything is built. The running tree is
 * never written.
 */
export interface HarnessState {
  /** sha256 over every file under harness/, path and content: the revision a patch is written against */
  revision: string;
  evolvable: string[];
  /** the evolvable files' content, by path relative to the repository root */
  files: Record<string, string>;
  /** every file under harness/ and test/evolved/ (relative to the root), for the scope check's "new file" rule */
  existing: string[];
}

export type CheckStage = 'scope' | 'apply' | 'typecheck' | 'lint' | 'unit-tests';

export type PatchCheck =
  | { ok: true; diff: string; treeHash: string; changed: string[] }
  | { ok: false; stage: CheckStage; reason: string; diff?: string };

/** What is copied into a scratch tree: the source, never dependencies, VCS data or build output. */
const SKIP = new Set(['node_modules', '.git', 'build', '.cache', 'coverage']);

/**
 * The files git tracks in a tree that is a git checkout's root (with their working-tree content):
 * what the tree is, and not a scratch script, a log or a `.env` lying beside it, which would
 * otherwise change the tree's hash (a new worker version) and be copied into the worker image.
 * Null when the tree is no checkout of its own (a scratch tree, an unpacked release): every file then.
 */
async function trackedFiles(root: string): Promise<string[] | null> {
  try {
    const top = (await run('git', ['-C', root, 'rev-parse', '--show-toplevel'])).stdout.trim();
    if ((await fs.realpath(top)) !== (await fs.realpath(root))) return null;
    const listed = (await run('git', ['-C', root, 'ls-files', '-z', '--cached'], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    const files: string[] = [];
    for (const f of listed.split('\0')) {
      if (!f || f.split('/').some((part) => SKIP.has(part))) continue;
      // deleted in the working tree, or a symlink (a walk skips those too)
      if ((await fs.lstat(path.join(root, f)).catch(() => null))?.isFile()) files.push(f);
    }
    return files;
  } catch {
    return null;
  }
}

async function listFiles(root: string, dir = ''): Promise<string[]> {
  const tracked = await trackedFiles(root);
  if (tracked) return tracked.filter((f) => !dir || f.startsWith(`${dir}/`)).sort();
  return walkFiles(root, dir);
}

async function walkFiles(root: string, dir = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(path.join(root, dir), { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await walkFiles(root, rel)));
    else if (entry.isFile()) out.push(rel);
  }
  return out.sort();
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function treeHashes(root: string, only?: string): Promise<Map<string, string>> {
  const files = await listFiles(root, only);
  const hashes = new Map<string, string>();
  for (const f of files) hashes.set(f, sha(await fs.readFile(path.join(root, f))));
  return hashes;
}

function combined(hashes: Map<string, string>): string {
  return sha([...hashes].map(([f, h]) => `${f}\0${h}`).join('\n'));
}

export async function harnessState(repoRoot: string): Promise<HarnessState> {
  const manifest = JSON.parse(await fs.readFile(path.join(repoRoot, 'harness', 'manifest.json'), 'utf8')) as {
    evolvable: { path: string }[];
  };
  const evolvable = manifest.evolvable.map((e) => e.path);
  const hashes = await treeHashes(repoRoot, 'harness');
  const files: Record<string, string> = {};
  for (const p of evolvable) files[`harness/${p}`] = await fs.readFile(path.join(repoRoot, 'harness', p), 'utf8');
  const tests = await listFiles(repoRoot, HARNESS_TESTS_DIR.replace(/\/$/, '')).catch(() => []);
  return { revision: combined(hashes), evolvable, files, existing: [...hashes.keys(), ...tests] };
}

async function copyTree(from: string, to: string): Promise<void> {
  await fs.rm(to, { recursive: true, force: true });
  for (const f of await listFiles(from)) {
    await fs.mkdir(path.dirname(path.join(to, f)), { recursive: true });
    await fs.copyFile(path.join(from, f), path.join(to, f));
  }
  // Dependencies are read, never changed: the scratch tree shares them.
  await fs.symlink(path.join(from, 'node_modules'), path.join(to, 'node_modules'), 'dir');
}

async function step(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message };
  }
}

const tail = (s: string, lines = 30) => s.trim().split('\n').slice(-lines).join('\n');

/**
 * Applies a patch to a scratch copy of the tree and checks it. Refuses, with the stage and the
 * reason: a harness that moved since the patch was written, anything outside scope (on the edits
 * and again on the whole tree after applying), a type error, a lint finding, a failing harness test.
 */
export async function checkPatch(input: Parameters<typeof checkTree>[0]): Promise<PatchCheck> {
  const result = await checkTree(input);
  // A refused patch leaves nothing behind; a passing one keeps its tree for the image build.
  if (!result.ok) await fs.rm(path.join(input.scratchDir, 'tree'), { recursive: true, force: true });
  return result;
}

/** Files the checks write into a tree, not part of it: never hashed, never in an image. */
export const CHECK_ARTEFACTS: ReadonlySet<string> = new Set(['tsconfig.evolve.json', '.evolve.tsbuildinfo']);

async function checkTree(input: {
  repoRoot: string;
  scratchDir: string;
  revision: string;
  /** the patch's files as resolved against the revision (domain/evolve.ts resolveEdits) */
  edits: { path: string; content: string }[];
  /**
   * The type check's build-info file, kept between checks (outside any tree): tsc then checks again
   * only what changed since the last tree it saw — it compares files by their content's hash, so a
   * stale or missing file costs a full check, never a wrong one.
   */
  typecheckCache?: string;
}): Promise<PatchCheck> {
  const state = await harnessState(input.repoRoot);
  const scope = scopeProblems(input.edits, state.evolvable, new Set(state.existing));
  if (scope.length) return { ok: false, stage: 'scope', reason: scope.join('; ') };
  if (state.revision !== input.revision) {
    return {
      ok: false,
      stage: 'apply',
      reason: `the harness changed since the patch was written (revision ${input.revision.slice(0, 12)} → ${state.revision.slice(0, 12)}): write it again against the current files`,
    };
  }

  const tree = path.join(input.scratchDir, 'tree');
  await copyTree(input.repoRoot, tree);
  const before = await treeHashes(tree);
  const diffs: string[] = [];
  for (const e of input.edits) {
    const p = normalisePatchPath(e.path)!;
    const file = path.join(tree, p);
    const old = await fs.readFile(file, 'utf8').catch(() => '');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, e.content);
    diffs.push(unifiedDiff(old, e.content, { fromLabel: `a/${p}`, toLabel: `b/${p}` }));
  }
  const diff = diffs.join('\n');
  const after = await treeHashes(tree);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((f) => before.get(f) !== after.get(f)).sort();
  const wanted = new Set(input.edits.map((e) => normalisePatchPath(e.path)!));
  const stray = changed.filter((f) => !wanted.has(f));
  if (stray.length)
    return { ok: false, stage: 'scope', reason: `applying the patch changed files it does not name: ${stray.join(', ')}`, diff };
  if (!changed.length) return { ok: false, stage: 'apply', reason: 'the patch changes nothing', diff };

  // Type check the harness and the domain it may import, with the repository's own settings.
  await fs.writeFile(
    path.join(tree, 'tsconfig.evolve.json'),
    JSON.stringify({ extends: './tsconfig.json', include: ['harness', 'domain'] }),
  );
  // Run by path, not through node_modules/.bin: the worker image has node but no /usr/bin/env for
  // their shebangs, nor the ldd that Biome's launcher asks which libc it has.
  const modules = path.join(tree, 'node_modules');
  const buildInfo = path.join(tree, '.evolve.tsbuildinfo');
  if (input.typecheckCache) await fs.copyFile(input.typecheckCache, buildInfo).catch(() => {});
  const typecheck = await step(
    process.execPath,
    [
      path.join(modules, 'typescript', 'bin', 'tsc'),
      '--noEmit',
      '--incremental',
      '--tsBuildInfoFile',
      buildInfo,
      '-p',
      'tsconfig.evolve.json',
    ],
    tree,
    120_000,
  );
  if (input.typecheckCache) {
    const info = await fs.readFile(buildInfo, 'utf8').catch(() => null);
    // Another check may read it meanwhile: whole or not at all. Not kept is only a slower next check.
    if (info !== null) await writeFileAtomic(input.typecheckCache, info).catch(() => {});
  }
  if (!typecheck.ok) return { ok: false, stage: 'typecheck', reason: tail(typecheck.output), diff };
  const biome = path.join(modules, '@biomejs', `cli-${process.platform}-${process.arch}`, 'biome');
  const lint = await step(biome, ['check', '--error-on-warnings', 'harness'], tree, 60_000);
  if (!lint.ok) return { ok: false, stage: 'lint', reason: tail(lint.output), diff };
  const newTests = [...wanted].filter((p) => p.startsWith(HARNESS_TESTS_DIR));
  const unit = await step(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=dot', 'test/unit/harness.test.ts', ...newTests],
    tree,
    180_000,
  );
  if (!unit.ok) return { ok: false, stage: 'unit-tests', reason: tail(unit.output), diff };
  return { ok: true, diff, treeHash: combined(after), changed };
}

/**
 * A tree's hash as checkPatch reports it, recomputed from the tree on disk, with the files it covers;
 * `except` names files the checks themselves left there (tsconfig.evolve.json). The image build
 * (services/evolution/image.ts) labels an image with this hash only when the tree still has it.
 */
export async function treeHashOf(tree: string, except: ReadonlySet<string> = new Set()): Promise<{ hash: string; files: string[] }> {
  const hashes = await treeHashes(tree);
  for (const f of except) hashes.delete(f);
  return { hash: combined(hashes), files: [...hashes.keys()] };
}
