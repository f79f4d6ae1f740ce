import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { ForgeConfig } from '../../domain/config.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { type RunningWorkers, startWorkers } from '../../workers/main.ts';
import { freshDatabase, testConfig } from './env.ts';
import { testClient } from './temporal.ts';

export interface Harness {
  db: Awaited<ReturnType<typeof freshDatabase>>;
  model: ScriptedModel;
  workers: RunningWorkers;
  client: Client;
  cfg: ForgeConfig;
  home: string;
  close(): Promise<void>;
}

const SLOW_STEP_MS = 60_000;

/** A close step that hangs names itself (a test file that never ends only says it timed out). */
async function step(name: string, run: () => Promise<void>): Promise<void> {
  const timer = setTimeout(
    () => process.stderr.write(`[harness] ${name} still running after ${SLOW_STEP_MS} ms; active: ${activeResources()}\n`),
    SLOW_STEP_MS,
  ).unref();
  try {
    await run();
  } finally {
    clearTimeout(timer);
  }
}

/** After close, anything still holding the file's process open is named (without holding it itself). */
function reportLingering(): void {
  setTimeout(() => process.stderr.write(`[harness] process still alive 30 s after close; active: ${activeResources()}\n`), 30_000).unref();
}

const activeResources = () => process.getActiveResourcesInfo().join(', ');

/**
 * One test file's Forge: a fresh database on the real Postgres, the scripted model serving the
 * given scenarios, an in-process worker on its own task queues against the run's Temporal server.
 */
export async function startHarness(opts: {
  scenarioFiles?: string[];
  scenarios?: ScenarioInput[];
  env?: Record<string, string>;
  /** which queues the in-process worker serves (default both); 'sandbox' when a container serves the control queue, 'control' for a Forge whose sandbox worker is down */
  role?: 'all' | 'sandbox' | 'control';
}): Promise<Harness> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-harness-'));
  // What started so far, undone in reverse when a later part fails to start: a database left open
  // held the test file's process after its failure was reported.
  const undo: { name: string; run: () => Promise<void> }[] = [
    { name: 'home removal', run: async () => fs.rmSync(home, { recursive: true, force: true }) },
  ];
  try {
    const db = await freshDatabase();
    undo.push({ name: 'database drop', run: () => db.drop() });
    const model = await startScriptedModel({ scenarioFiles: opts.scenarioFiles?.map((f) => path.resolve(f)), scenarios: opts.scenarios });
    undo.push({ name: 'scripted model close', run: () => model.close() });
    const cfg = testConfig({ DATABASE_URL: db.url, ANTHROPIC_BASE_URL: model.url, FORGE_HOME: home, FORGE_POOL_SIZE: '0', ...opts.env });
    const workers = await startWorkers(cfg, opts.role ?? 'all');
    void workers.run();
    undo.push({ name: 'worker shutdown', run: () => workers.shutdown() });
    const client = await testClient(cfg);
    return harnessOf({ db, model, workers, client, cfg, home });
  } catch (err) {
    for (const u of undo.reverse()) await step(u.name, () => u.run().catch(() => undefined));
    throw err;
  }
}

function harnessOf(parts: Omit<Harness, 'close'>): Harness {
  const { db, model, workers, client, home } = parts;
  return {
    ...parts,
    async close() {
      await step('worker shutdown', () => workers.shutdown());
      await step('client connection close', () => client.connection.close());
      await step('scripted model close', () => model.close());
      await step('database drop', () => db.drop());
      fs.rmSync(home, { recursive: true, force: true });
      reportLingering();
    },
  };
}
