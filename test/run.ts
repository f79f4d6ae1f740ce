/**
 * `npm test`: provisions what the suite needs (Temporal CLI, Docker engine, sandbox image, a real
 * Postgres server), starts one Temporal dev server and one embedded PGlite server for the whole
 * run, then runs every test file with node:test. Pass file paths to run a subset.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureChromium } from '../infra/chromium.ts';
import { dockerClient, ensureDockerEngine } from '../infra/docker.ts';
import { ensureEmbeddingModel } from '../infra/embedding-model.ts';
import { ensureLocalPostgres } from '../infra/local-postgres.ts';
import { servePglite } from '../infra/pglite-server.ts';
import { freePort, portOpen, waitFor } from '../infra/processes.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { devServerArgs } from '../infra/temporal.ts';
import { ensureTemporalCli } from '../infra/temporal-cli.ts';
import { config } from '../services/config.ts';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
// The sandbox image carries this checkout's runner. Under one shared tag, two checkouts testing on one
// Docker host (a CI clone beside a working tree) rebuild it over each other mid-run and each runs the
// other's runner; a tag per checkout keeps them apart.
process.env.FORGE_SANDBOX_IMAGE ??= `forge-sandbox:test-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`;
const cfg = config();
const say = (m: string) => process.stdout.write(`[test-run] ${m}\n`);

function testFiles(args: string[]): string[] {
  if (args.length) return args;
  const files: string[] = [];
  // test/evolved: regression tests the evolve cycle added with promoted harness patches.
  for (const dir of ['test/unit', 'test/evolved', 'test/integration', 'test/smoke', 'test/e2e']) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs).sort()) if (f.endsWith('.test.ts')) files.push(path.join(dir, f));
  }
  return files;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-test-'));
const cleanups: (() => Promise<void> | void)[] = [];

async function main(): Promise<number> {
  say('provisioning: temporal cli, docker engine, sandbox image, embedding model, postgres (and chromium for the dashboard tests)');
  const temporalCli = await ensureTemporalCli(cfg);
  await ensureEmbeddingModel(cfg);
  await ensureDockerEngine(cfg);
  await ensureSandboxImage(dockerClient(cfg), { tag: cfg.FORGE_SANDBOX_IMAGE });
  const adminUrl = ensureLocalPostgres();
  const files = testFiles(process.argv.slice(2));
  // The dashboard's browser tests drive Debian's chromium through playwright-core (installed here when missing).
  const chromium = files.some((f) => f.includes('dashboard')) ? ensureChromium() : undefined;

  const port = await freePort();
  const server = spawn(
    temporalCli,
    devServerArgs({ dbFile: path.join(tmp, 'temporal.db'), port, uiPort: await freePort(), namespace: 'default', headless: true }),
    {
      stdio: ['ignore', 'ignore', fs.openSync(path.join(tmp, 'temporal.log'), 'a')],
    },
  );
  // Wait for the server to exit: it writes its database files until then, and removing the
  // directory under it fails with ENOTEMPTY (a red run after green tests).
  cleanups.push(async () => {
    if (server.exitCode !== null) return;
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  });
  await waitFor('Temporal dev server', () => portOpen(port), 60_000, path.join(tmp, 'temporal.log'));

  const pglite = await servePglite(path.join(tmp, 'pglite'), await freePort());
  cleanups.push(() => pglite.stop());
  // Control worker containers a test left (they restart by themselves): a crashed test file leaves them polling a dead server.
  // Only this run's — those pointed at its own Temporal server: another run on the machine keeps its own.
  cleanups.push(async () => {
    const docker = dockerClient(cfg);
    for (const c of await docker.listContainers({ all: true, filters: { label: ['forge.control'] } })) {
      if (!(c.Labels['forge.control'] ?? '').startsWith('forge-test-')) continue;
      const container = docker.getContainer(c.Id);
      const env = (await container.inspect().catch(() => undefined))?.Config.Env ?? [];
      if (env.includes(`TEMPORAL_ADDRESS=127.0.0.1:${port}`)) await container.remove({ force: true }).catch(() => {});
    }
  });
  say(`temporal 127.0.0.1:${port}, postgres ${adminUrl.replace(/:[^:@]+@/, ':***@')}, pglite ready`);

  const env = {
    ...process.env,
    FORGE_HOME: path.join(tmp, 'home'),
    TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    FORGE_TEST_ADMIN_URL: adminUrl,
    FORGE_TEST_PGLITE_URL: pglite.url,
    DATABASE_URL: adminUrl.replace(/\/postgres$/, '/forge_test_shared'),
    FORGE_LOG_LEVEL: process.env.FORGE_LOG_LEVEL ?? 'warn',
    ...(chromium ? { FORGE_CHROMIUM: chromium } : {}),
  };
  // A test stuck on a component that went away fails after 15 minutes, with its name, instead of holding the run.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', '--test-reporter=spec', ...files],
    {
      cwd: root,
      env,
      stdio: 'inherit',
    },
  );
  return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`[test-run] provisioning failed: ${(err as Error).message}\n`);
} finally {
  for (const c of cleanups.reverse()) await c();
  try {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (err) {
    // Leftover scratch files are not a test result.
    say(`could not remove ${tmp}: ${(err as Error).message}`);
  }
}
process.exit(code);
