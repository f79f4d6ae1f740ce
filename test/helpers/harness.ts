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

/**
 * One test file's Forge: a fresh database on the real Postgres, the scripted model serving the
 * given scenarios, an in-process worker on its own task queues against the run's Temporal server.
 */
export async function startHarness(opts: {
  scenarioFiles?: string[];
  scenarios?: ScenarioInput[];
  env?: Record<string, string>;
  /** which queues the in-process worker serves (default both); 'sandbox' when a container serves the control queue */
  role?: 'all' | 'sandbox';
}): Promise<Harness> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-harness-'));
  const db = await freshDatabase();
  const model = await startScriptedModel({ scenarioFiles: opts.scenarioFiles?.map((f) => path.resolve(f)), scenarios: opts.scenarios });
  const cfg = testConfig({ DATABASE_URL: db.url, ANTHROPIC_BASE_URL: model.url, FORGE_HOME: home, FORGE_POOL_SIZE: '0', ...opts.env });
  const workers = await startWorkers(cfg, opts.role ?? 'all');
  void workers.run();
  const client = await testClient(cfg);
  return {
    db,
    model,
    workers,
    client,
    cfg,
    home,
    async close() {
      await workers.shutdown();
      await client.connection.close();
      await model.close();
      await db.drop();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
