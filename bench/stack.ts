/**
 * A whole Forge for the cycle benches, started the way `npm test` starts one (test/run.ts): a
 * Temporal dev server of its own, the Docker engine and sandbox image, a fresh database on a real
 * Postgres server (or an in-memory PGlite), the scripted model behind a proxy that times every
 * model request (so "beyond the model" can be measured), and an in-process worker.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { type ForgeConfig, loadConfig } from '../domain/config.ts';
import { dockerClient, ensureDockerEngine } from '../infra/docker.ts';
import { ensureLocalPostgres } from '../infra/local-postgres.ts';
import { freePort, portOpen, waitFor } from '../infra/processes.ts';
import { ensureSandboxImage } from '../infra/sandbox-image.ts';
import { devServerArgs, temporalClient } from '../infra/temporal.ts';
import { ensureTemporalCli } from '../infra/temporal-cli.ts';
import type { ScenarioInput } from '../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../scripted-model/server.ts';
import { config } from '../services/config.ts';
import { type RunningWorkers, startWorkers } from '../workers/main.ts';
import { type BenchDb, pgliteDb, postgresDb } from './lib.ts';

export interface ModelClock {
  /** model requests answered so far and the time they took, in ms */
  readonly requests: number;
  readonly ms: number;
}

export interface Stack {
  cfg: ForgeConfig;
  client: Client;
  db: BenchDb;
  model: ScriptedModel;
  modelClock: ModelClock;
  close(): Promise<void>;
}

/** A proxy in front of the scripted model that adds up how long each request took. */
async function timedProxy(target: string): Promise<{ url: string; clock: ModelClock; close(): Promise<void> }> {
  const clock = { requests: 0, ms: 0 };
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const started = performance.now();
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('end', () => {
          clock.requests++;
          clock.ms += performance.now() - started;
        });
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    clock,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function startStack(opts: {
  database: 'postgres' | 'pglite';
  /** the sandbox worker's warm pool (FORGE_POOL_SIZE's default when absent) */
  poolSize?: number;
  env?: Record<string, string>;
  /** scenarios served before the bundled ones */
  scenarios?: ScenarioInput[];
}): Promise<Stack> {
  const base = config();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-'));
  const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })];
  const close = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const cli = await ensureTemporalCli(base);
    await ensureDockerEngine(base);
    await ensureSandboxImage(dockerClient(base), { tag: base.FORGE_SANDBOX_IMAGE });

    const port = await freePort();
    const server = spawn(
      cli,
      devServerArgs({ dbFile: path.join(tmp, 'temporal.db'), port, uiPort: await freePort(), namespace: 'default', headless: true }),
      { stdio: ['ignore', 'ignore', fs.openSync(path.join(tmp, 'temporal.log'), 'a')] },
    );
    cleanups.push(async () => {
      if (server.exitCode !== null) return;
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    });
    await waitFor('Temporal dev server', () => portOpen(port), 60_000, path.join(tmp, 'temporal.log'));

    const db = opts.database === 'pglite' ? await pgliteDb() : await postgresDb(ensureLocalPostgres(), 'cycles');
    cleanups.push(() => db.close());
    // every bundled scenario, demo.json last: its catch-all answers any task (as `forge up` serves them)
    const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'scenarios');
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort((a, b) => Number(a === 'demo.json') - Number(b === 'demo.json') || a.localeCompare(b));
    const model = await startScriptedModel({
      scenarios: [...(opts.scenarios ?? []), ...files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ScenarioInput)],
    });
    cleanups.push(() => model.close());
    const proxy = await timedProxy(model.url);
    cleanups.push(() => proxy.close());

    const cfg = loadConfig(
      {
        ...process.env,
        TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
        DATABASE_URL: db.url,
        ANTHROPIC_BASE_URL: proxy.url,
        ANTHROPIC_API_KEY: undefined,
        FORGE_HOME: path.join(tmp, 'home'),
        // as a running Forge's sandbox worker has it, unless asked
        ...(opts.poolSize !== undefined ? { FORGE_POOL_SIZE: String(opts.poolSize) } : {}),
        FORGE_DAILY_FORGE_BUDGET: '100000',
        FORGE_WATCH_TOOLS: '0',
        FORGE_LOG_LEVEL: process.env.FORGE_LOG_LEVEL ?? 'error',
        ...opts.env,
      },
      path.join(tmp, 'home'),
    );
    const workers: RunningWorkers = await startWorkers(cfg);
    const running = workers.run();
    cleanups.push(async () => {
      await workers.shutdown();
      await running.catch(() => {});
    });
    const client = await temporalClient(cfg);
    cleanups.push(() => client.connection.close());
    return { cfg, client, db, model, modelClock: proxy.clock, close };
  } catch (err) {
    await close();
    throw err;
  }
}
