import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ForgeError } from '../../domain/errors.ts';

/**
 * The harness's history a person can audit (issue 12): a git repository under FORGE_HOME whose tree
 * is the running harness (harness/ and test/evolved/). The shipped harness is its first commit;
 * each promoted patch, and each rollback, is one commit whose message carries the evidence, the
 * replay report, who consented and the health results, with a `Forge-Build:` trailer naming the
 * version. Recording the same build twice finds the first commit (a retried activity is a no-op).
 */
const run = promisify(execFile);
const TRACKED = ['harness', 'test/evolved'];

export const historyDir = (home: string) => path.join(home, 'harness-history');

export class HistoryError extends ForgeError {
  constructor(what: string, reason: string, dir: string) {
    super(
      `the harness history at ${dir} could not ${what}: ${reason}`,
      'HARNESS_HISTORY_FAILED',
      `check that git is installed and ${dir} is a git repository Forge may write (move it aside to start a new one)`,
      { dir },
    );
  }
}

export interface Revision {
  sha: string;
  subject: string;
  buildId: string | null;
  at: string;
}

async function git(dir: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-C', dir, '-c', 'user.name=Forge', '-c', 'user.email=forge@localhost', ...args], {
    maxBuffer: 32 * 1024 * 1024,
  });
  return stdout;
}

/** Replaces the repository's tracked folders with the tree's. */
async function copyTracked(tree: string, dir: string): Promise<void> {
  for (const rel of TRACKED) {
    await fs.rm(path.join(dir, rel), { recursive: true, force: true });
    const from = path.join(tree, rel);
    if (await fs.stat(from).catch(() => null)) await fs.cp(from, path.join(dir, rel), { recursive: true });
  }
}

async function findDeploy(dir: string, deployId: string): Promise<string | null> {
  const out = await git(dir, ['log', '--format=%H', '--fixed-strings', `--grep=Forge-Deploy: ${deployId}`]).catch(() => '');
  return out.trim().split('\n')[0] || null;
}

/** The repository, created with the tree's harness as its first commit when missing. */
export async function ensureHistory(home: string, tree: string, buildId: string): Promise<string> {
  const dir = historyDir(home);
  try {
    await fs.mkdir(dir, { recursive: true });
    if (!(await fs.stat(path.join(dir, '.git')).catch(() => null))) await git(dir, ['init', '-q', '-b', 'main']);
    const head = await git(dir, ['rev-parse', '--verify', '-q', 'HEAD']).catch(() => '');
    if (head.trim()) return head.trim();
    await copyTracked(tree, dir);
    await git(dir, ['add', '-A']);
    await git(dir, ['commit', '-q', '--allow-empty', '-m', `The harness as installed\n\nForge-Build: ${buildId}`]);
    return (await git(dir, ['rev-parse', 'HEAD'])).trim();
  } catch (err) {
    if (err instanceof HistoryError) throw err;
    throw new HistoryError('be created', String((err as Error).message ?? err), dir);
  }
}

/**
 * One commit for a version going live: the tree's harness (a promoted candidate's scratch tree), or
 * an earlier commit's (a rollback), with the message and the trailers naming the build and the
 * deploy. The same deploy twice finds its first commit.
 */
export async function recordRevision(
  home: string,
  input: { deployId: string; buildId: string; subject: string; body: string } & ({ tree: string } | { restore: string }),
): Promise<string> {
  const dir = historyDir(home);
  try {
    const existing = await findDeploy(dir, input.deployId);
    if (existing) return existing;
    if ('tree' in input) {
      await copyTracked(input.tree, dir);
      await git(dir, ['add', '-A']);
    } else {
      await git(dir, ['read-tree', '-u', '--reset', input.restore]);
    }
    const message = `${input.subject}\n\n${input.body.trim()}\n\nForge-Build: ${input.buildId}\nForge-Deploy: ${input.deployId}\n`;
    await git(dir, ['commit', '-q', '--allow-empty', '-m', message]);
    return (await git(dir, ['rev-parse', 'HEAD'])).trim();
  } catch (err) {
    throw new HistoryError(`record ${input.buildId}`, String((err as Error).message ?? err), dir);
  }
}

/** Newest first. */
export async function revisions(home: string, limit = 50): Promise<Revision[]> {
  const dir = historyDir(home);
  if (!(await fs.stat(path.join(dir, '.git')).catch(() => null))) return [];
  const out = await git(dir, ['log', `-n${limit}`, '--format=%H%x1f%s%x1f%cI%x1f%(trailers:key=Forge-Build,valueonly)%x1e']).catch(
    () => '',
  );
  return out
    .split('\x1e')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r) => {
      const [sha = '', subject = '', at = '', build = ''] = r.split('\x1f');
      return { sha, subject, at, buildId: build.trim() || null };
    });
}

/** The commit a revision prefix names, and the build it records. */
export async function findRevision(home: string, ref: string): Promise<Revision | null> {
  return (await revisions(home, 1000)).find((r) => r.sha.startsWith(ref.toLowerCase()) || r.buildId === ref) ?? null;
}
