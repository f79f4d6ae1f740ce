/**
 * The forge cycle's model side, end to end without Temporal: the scripted model serves the
 * scenarios/forge-*.json files (all loaded at once, with demo.json, to prove their rules do
 * not collide), the forge LLM activities call it through the real SDK, the files they
 * produce are written to a temp dir, and `forge sandbox verify <dir> --json` (the real
 * pipeline: static check, then the tests in a Docker sandbox) judges them, repairing up to
 * 3 times as the forge workflow does.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ForgeLlmActivities, forgeLlmActivities } from '../../activities/llm.ts';
import { type ToolSpec, toolFiles } from '../../domain/forge.ts';
import type { ApiSpec } from '../../domain/tool.ts';
import { formatForRepair, type VerifyReport, verifyReportSchema } from '../../domain/verification.ts';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import { type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { config } from '../../services/config.ts';
import { createLlm } from '../../services/llm/client.ts';
import { FORGE_PURPOSES } from '../../services/llm/forge-author.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCENARIOS = ['forge-exchange-rate.json', 'forge-repair.json', 'forge-always-broken.json', 'forge-word-count.json', 'demo.json'].map(
  (f) => path.join(root, 'scenarios', f),
);
const MAX_REPAIRS = 3;

let model: ScriptedModel;
let llm: ForgeLlmActivities;
let tmp: string;

interface ForgeRun {
  spec: ToolSpec;
  apiSpec: ApiSpec | null;
  reports: VerifyReport[];
  diagnoses: string[];
}

/** `forge sandbox verify <dir> --json`: exit 0 when verified, 1 when not; one JSON line holding the report. */
function verifyWithCli(dir: string, name: string): Promise<VerifyReport> {
  const args = [path.join(root, 'bin', 'forge.mjs'), 'sandbox', 'verify', dir, '--json', '--no-live', '--name', name];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const line = stdout.trim().split('\n').at(-1) ?? '';
      const parsed = (() => {
        try {
          return verifyReportSchema.safeParse(JSON.parse(line));
        } catch {
          return undefined;
        }
      })();
      if (!parsed?.success || code > 1 || code < 0) {
        return reject(new Error(`forge sandbox verify exited ${code} without a report:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
      }
      assert.equal(code, parsed.data.passed ? 0 : 1, 'the exit code says whether the tool passed');
      resolve(parsed.data);
    });
  });
}

/** Writes the tool's files to a folder, as registration would, and verifies that folder. */
async function verifyFolder(name: string, attempt: number, files: Record<string, string>): Promise<VerifyReport> {
  const dir = path.join(tmp, `${name}-${attempt}`);
  await fs.mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(dir, file), text);
  return verifyWithCli(dir, name);
}

/** The forge workflow's LLM/verify loop, without Temporal. */
async function forge(need: string): Promise<ForgeRun> {
  const spec = await llm.writeSpec({ need });
  const apiSpec = spec.permissions.network.length ? await llm.extractApiSpec({ spec }) : null;
  const { tests } = await llm.writeTests({ spec, apiSpec });
  let { source } = await llm.writeImplementation({ spec, apiSpec, tests });
  const reports: VerifyReport[] = [];
  const diagnoses: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const report = await verifyFolder(spec.name, attempt, toolFiles(source, tests, apiSpec ?? undefined));
    reports.push(report);
    if (report.passed || attempt > MAX_REPAIRS) break;
    const repaired = await llm.repairImplementation({ spec, apiSpec, tests, source, failures: formatForRepair(report), attempt });
    source = repaired.source;
    diagnoses.push(repaired.diagnosis);
  }
  return { spec, apiSpec, reports, diagnoses };
}

const stage = (r: VerifyReport | undefined, name: 'static' | 'mock') => r?.stages.find((s) => s.stage === name);
const failingTests = (r: VerifyReport | undefined) => (stage(r, 'mock')?.tests ?? []).filter((t) => !t.passed).map((t) => t.name);
const purposesSince = (from: number) => model.requests.slice(from).map((r) => r.headers['x-forge-purpose']);

before(async () => {
  // Once here, so each CLI run finds the image ready.
  const cfg = config();
  await ensureSandboxImage(dockerClient(cfg), { tag: cfg.FORGE_SANDBOX_IMAGE });
  model = await startScriptedModel({ scenarioFiles: SCENARIOS });
  llm = forgeLlmActivities(createLlm({ baseURL: model.url, model: 'claude-sonnet-4-6' }));
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-llm-it-'));
});

after(async () => {
  await model?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('forge scenarios through the activities and the real verifier', { timeout: 600_000 }, () => {
  it('exchange rate: spec, API spec, tests and implementation pass verification the first time', async () => {
    const from = model.requests.length;
    const run = await forge('fetch the exchange rate between two currencies');
    assert.equal(run.spec.name, 'fetch_exchange_rate');
    assert.equal(run.apiSpec?.baseUrl, 'https://openexchangerates.org/api');
    assert.equal(run.reports.length, 1, formatForRepair(run.reports[0]!));
    assert.equal(run.reports[0]!.passed, true, formatForRepair(run.reports[0]!));
    assert.equal(stage(run.reports[0], 'mock')?.tests?.length, 9);
    assert.deepEqual(purposesSince(from), [FORGE_PURPOSES.spec, FORGE_PURPOSES.api, FORGE_PURPOSES.tests, FORGE_PURPOSES.implementation]);
    assert.equal(model.unmatched, 0);
  });

  it('repair demo: the first implementation fails the retry tests, the repaired one passes', async () => {
    const from = model.requests.length;
    const run = await forge('fetch the exchange rate between two currencies (repair demo)');
    assert.equal(run.spec.name, 'fetch_exchange_rate_repair_demo');
    assert.equal(run.reports.length, 2);
    const [first, second] = run.reports;
    assert.equal(first!.passed, false);
    assert.equal(stage(first, 'static')?.status, 'passed', 'the bug is behavioural, not static');
    const failing = failingTests(first);
    assert.ok(failing.includes('waits for Retry-After and retries after a 429'), failing.join(', '));
    assert.ok(failing.includes('gives up with the status after repeated server errors'), failing.join(', '));
    assert.equal(second!.passed, true, formatForRepair(second!));
    assert.match(run.diagnoses[0]!, /retr/i);

    // The repair prompt carried the report the model needs to act on.
    const repair = model.requests.slice(from).find((r) => r.headers['x-forge-purpose'] === FORGE_PURPOSES.repair);
    assert.ok(JSON.stringify(repair?.body).includes('retries after a 429'));
    assert.equal(model.unmatched, 0);
  });

  it('always broken: the implementation and all 3 repairs fail, so the forge would end failed', async () => {
    const from = model.requests.length;
    const run = await forge('turn a title into a URL slug (always broken demo)');
    assert.equal(run.spec.name, 'slugify_title');
    assert.equal(run.apiSpec, null, 'a local tool has no API step');
    assert.equal(run.reports.length, 1 + MAX_REPAIRS);
    for (const [i, r] of run.reports.entries()) {
      assert.equal(r.passed, false, `attempt ${i + 1} should fail`);
      assert.equal(stage(r, 'static')?.status, 'passed', `attempt ${i + 1} fails in its tests, not statically: ${formatForRepair(r)}`);
      assert.ok(failingTests(r).length > 0);
    }
    assert.equal(purposesSince(from).filter((p) => p === FORGE_PURPOSES.repair).length, MAX_REPAIRS);
    assert.equal(model.unmatched, 0);
  });

  it('word count: a local read tool passes the first time', async () => {
    const run = await forge('count the words in a text');
    assert.equal(run.spec.name, 'count_words');
    assert.equal(run.spec.sideEffect, 'read');
    assert.equal(run.apiSpec, null);
    assert.equal(run.reports.length, 1);
    assert.equal(run.reports[0]!.passed, true, formatForRepair(run.reports[0]!));
  });

  it('create note: a local, non-destructive write tool passes the first time', async () => {
    const run = await forge('create a note with a title and a body');
    assert.equal(run.spec.name, 'create_note');
    assert.equal(run.spec.sideEffect, 'write');
    assert.equal(run.spec.destructive, false);
    assert.equal(run.reports.length, 1);
    assert.equal(run.reports[0]!.passed, true, formatForRepair(run.reports[0]!));
    assert.equal(model.unmatched, 0);
  });
});
