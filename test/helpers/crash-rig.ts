import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { ForgeConfig } from '../../domain/config.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { freshDatabase, testConfig } from './env.ts';
import { testClient } from './temporal.ts';
import { workerProcessEnv } from './worker-process.ts';

/**
 * What a crash test needs around the worker it kills: a fresh database, the scripted model with the
 * given scenarios, a client, its own FORGE_HOME, and the environment a worker process starts with.
 */
export interface CrashRig {
  db: Awaited<ReturnType<typeof freshDatabase>>;
  model: ScriptedModel;
  client: Client;
  cfg: ForgeConfig;
  home: string;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function startCrashRig(label: string, scenarios: ScenarioInput[]): Promise<CrashRig> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `forge-${label}-`));
  const cfg = testConfig({ FORGE_POOL_SIZE: '0' });
  const db = await freshDatabase();
  const model = await startScriptedModel({ scenarios });
  const client = await testClient(cfg);
  return {
    db,
    model,
    client,
    cfg,
    home,
    env: workerProcessEnv(cfg, { databaseUrl: db.url, modelUrl: model.url, home }),
    async close() {
      await client.connection.close();
      await model.close();
      await db.drop();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A bundled scenario file whose matching rules answer after `delayMs`: the window a test kills the worker in. */
export function slowed(file: string, slow: (rule: ScenarioInput['rules'][number]) => boolean, delayMs = 4000): ScenarioInput {
  const scenario = JSON.parse(fs.readFileSync(path.resolve(file), 'utf8')) as ScenarioInput;
  for (const rule of scenario.rules) if (slow(rule)) rule.responses = rule.responses.map((r) => ({ ...r, delay_ms: delayMs }));
  return scenario;
}
