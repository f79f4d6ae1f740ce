/**
 * The verification pipeline against the real Docker engine: the worked example passes,
 * broken tools fail the mock stage with per-test output, the live stage skips when no
 * call is known to be safe, and the egress proxy's mechanics hold without internet:
 * undeclared and private destinations are refused, and the tool container reaches
 * nothing but the proxy.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import { NODE_PATH } from '../../runner/protocol.ts';
import { config } from '../../services/config.ts';
import { LABEL_OWNER, OWNER } from '../../services/sandbox/container.ts';
import { createSandbox, reapOrphans, type Sandbox, SandboxCancelledError } from '../../services/sandbox/index.ts';
import { LABEL_EGRESS } from '../../services/sandbox/stages/egress.ts';
import { type Egress, formatForRepair, mockStage, openEgress, reapEgress, verifyTool } from '../../services/sandbox/stages/index.ts';
import { harnessCli } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { OFFLINE_HOST, unauthenticatedTool as unauthenticated } from '../helpers/offline-tool.ts';
import { until } from '../helpers/wait.ts';

const cfg = config();
const image = cfg.FORGE_SANDBOX_IMAGE;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exampleDir = path.join(root, 'examples/tools/fetch_exchange_rate');
const example = {
  'tool.ts': fs.readFileSync(path.join(exampleDir, 'tool.ts'), 'utf8'),
  'tool.test.ts': fs.readFileSync(path.join(exampleDir, 'tool.test.ts'), 'utf8'),
  'api-spec.json': fs.readFileSync(path.join(exampleDir, 'api-spec.json'), 'utf8'),
};
let docker: Docker;
let sandbox: Sandbox;
const HANGING_TESTS = [
  "import { test } from 'node:test';",
  "import { run } from './tool.ts';",
  'void run;',
  "test('never ends', () => new Promise(() => setInterval(() => {}, 1000)));",
  '',
].join('\n');

/** The example with one line of its tool changed (each must actually change something). */
function exampleWith(from: string, to: string): Record<string, string> {
  assert.ok(example['tool.ts'].includes(from), `the example contains ${JSON.stringify(from)}`);
  return { ...example, 'tool.ts': example['tool.ts'].replace(from, to) };
}

async function ourEgressLeftovers(): Promise<number> {
  const mine = (labels?: Record<string, string>) => labels?.[LABEL_OWNER] === OWNER;
  const containers = (await docker.listContainers({ all: true, filters: { label: [LABEL_EGRESS] } })).filter((c) => mine(c.Labels));
  const networks = (await docker.listNetworks({ filters: { label: [LABEL_EGRESS] } })).filter((n) => mine(n.Labels));
  return containers.length + networks.length;
}

before(async () => {
  docker = dockerClient(cfg);
  await reapOrphans(docker);
  await reapEgress(docker);
  await ensureSandboxImage(docker, { tag: image });
  sandbox = createSandbox({ docker, image, poolSize: 1 });
});

after(async () => {
  await sandbox.close();
  assert.equal(await ourEgressLeftovers(), 0, 'no egress network or proxy container is left behind');
});

describe('verifyTool', () => {
  it('passes the worked example through static and mock, and skips live without its secret', async () => {
    const report = await verifyTool({ dir: exampleDir, live: { docker, image } }, sandbox);
    const [st, mock, checks, live] = report.stages;
    assert.equal(report.passed, true, formatForRepair(report));
    assert.equal(st?.status, 'passed');
    assert.deepEqual(st?.findings, []);
    assert.equal(mock?.status, 'passed');
    assert.equal(mock?.tests?.length, 9);
    assert.ok(mock?.tests?.every((t) => t.passed));
    assert.equal(mock?.coverage, 1);
    assert.ok(mock?.tests?.some((t) => t.name === 'waits for Retry-After and retries after a 429'));
    assert.equal(checks?.stage, 'forge-checks');
    assert.equal(checks?.status, 'passed');
    assert.ok(checks?.tests?.some((t) => t.name === 'fault: the API answers 429 with Retry-After: 1 once' && t.passed));
    assert.equal(live?.status, 'skipped');
    assert.match(live!.reason!, /needs OPENEXCHANGERATES_APP_ID/);
  });

  it('fails the mock stage of a buggy tool with per-test output a repair can use', async () => {
    // The bug: the rate is inverted.
    const report = await verifyTool(
      {
        files: exampleWith(
          'const rate = parsed.data.rates[input.quote];',
          'const found = parsed.data.rates[input.quote];\n  const rate = found === undefined ? undefined : 1 / found;',
        ),
      },
      sandbox,
    );
    const mock = report.stages[1]!;
    assert.equal(report.passed, false);
    assert.equal(report.stages[0]?.status, 'passed');
    assert.equal(mock.status, 'failed');
    // A run that produced no report fails too, for another reason: say which.
    assert.ok(mock.tests, `the mock stage failed without a test report: ${mock.reason}`);
    const failing = mock.tests.filter((t) => !t.passed);
    assert.deepEqual(failing.map((t) => t.name).sort(), [
      'returns the rate the API reports',
      'waits for Retry-After and retries after a 429',
    ]);
    assert.match(failing[0]!.error!, /0\.9175|149\.62/, 'the error shows the expected value');
    assert.equal(mock.coverage, 7 / 9);
    assert.match(mock.reason!, /2 of 9 tests failed/);
    assert.deepEqual(report.stages.slice(2), [
      { stage: 'forge-checks', status: 'skipped', reason: 'not run: the mock stage failed', durationMs: 0 },
      { stage: 'live', status: 'skipped', reason: 'not run: the mock stage failed', durationMs: 0 },
    ]);
    const text = formatForRepair(report);
    assert.match(text, /VERIFICATION FAILED at stage "mock"/);
    assert.match(text, /FAIL returns the rate the API reports/);
  });

  it('fails the rate-limit fault test of a tool that ignores 429', async () => {
    const report = await verifyTool({ files: exampleWith('const MAX_ATTEMPTS = 3;', 'const MAX_ATTEMPTS = 1;') }, sandbox);
    const mock = report.stages[1]!;
    assert.equal(mock.status, 'failed');
    const rateLimit = mock.tests!.find((t) => t.name === 'waits for Retry-After and retries after a 429');
    assert.equal(rateLimit?.passed, false);
    assert.match(rateLimit!.error!, /answered 429/);
    assert.equal(mock.tests!.find((t) => t.name === 'returns the rate the API reports')?.passed, true);
  });

  it('reports static findings and does not run the later stages', async () => {
    const report = await verifyTool(
      { files: exampleWith('const appId = ctx.env.OPENEXCHANGERATES_APP_ID;', 'const appId = process.env.OPENEXCHANGERATES_APP_ID;') },
      sandbox,
    );
    assert.equal(report.passed, false);
    assert.equal(report.stages[0]?.status, 'failed');
    assert.equal(report.stages[0]?.findings?.[0]?.rule, 'io-outside-ctx');
    assert.deepEqual(
      report.stages.slice(1).map((s) => [s.stage, s.status, s.reason]),
      [
        ['mock', 'skipped', 'not run: the static stage failed'],
        ['forge-checks', 'skipped', 'not run: the static stage failed'],
        ['live', 'skipped', 'not run: the static stage failed'],
      ],
    );
  });

  it('fails the static stage of code whose types do not finish checking in time, and checks the next tool afresh', async () => {
    const slow = await verifyTool({ files: example, staticDeadlineMs: 1 }, sandbox);
    assert.equal(slow.passed, false);
    const finding = slow.stages[0]?.findings?.[0];
    assert.equal(finding?.rule, 'type-check-deadline');
    assert.match(finding?.message ?? '', /did not finish within 1 ms: simplify the types/);
    assert.deepEqual(
      slow.stages.slice(1).map((s) => s.reason),
      ['not run: the static stage failed', 'not run: the static stage failed', 'not run: the static stage failed'],
    );

    const next = await verifyTool({ files: example }, sandbox);
    assert.equal(next.passed, true, formatForRepair(next));
    assert.deepEqual(next.stages[0]?.findings, []);
  });

  it('starts the tests alongside the static stage, yet a static failure decides: the report is the one of the sequential order', async () => {
    // Tests that would never end: the run started alongside must be cancelled, not waited for.
    const report = await verifyTool(
      {
        files: {
          ...exampleWith('const appId = ctx.env.OPENEXCHANGERATES_APP_ID;', 'const appId = process.env.OPENEXCHANGERATES_APP_ID;'),
          'tool.test.ts': HANGING_TESTS,
        },
      },
      sandbox,
    );
    assert.equal(report.passed, false);
    assert.equal(report.stages[0]?.status, 'failed');
    assert.deepEqual(
      report.stages.map((s) => s.findings?.map((f) => f.rule) ?? s.reason),
      [['io-outside-ctx'], 'not run: the static stage failed', 'not run: the static stage failed', 'not run: the static stage failed'],
    );
    await sandbox.ready(); // the cancelled run let its container go: the pool fills again
  });

  it('cancels a mock stage whose signal aborts mid-run, killing its container', async () => {
    await sandbox.ready();
    const taken = sandbox.stats().warmJobs;
    const controller = new AbortController();
    const run = mockStage(
      { source: example['tool.ts'], tests: HANGING_TESTS, apiSpec: JSON.parse(example['api-spec.json']), signal: controller.signal },
      sandbox,
    );
    await until('the tests run in a pool container', () => sandbox.stats().warmJobs > taken);
    controller.abort();
    await assert.rejects(run, SandboxCancelledError);
    await sandbox.ready();
  });

  it('fails a read tool that sends DELETE at the static stage, saying it lies about its side effect', async () => {
    const report = await verifyTool(
      { files: exampleWith('await ctx.fetch(url, { headers:', "await ctx.fetch(url, { method: 'DELETE', headers:") },
      sandbox,
    );
    assert.equal(report.passed, false);
    const finding = report.stages[0]?.findings?.find((f) => f.rule === 'side-effect');
    assert.match(
      finding?.message ?? JSON.stringify(report.stages[0]),
      /^method 'DELETE' in a tool that declares sideEffect 'read': a read tool may send only GET, HEAD, OPTIONS/,
    );
    assert.match(report.stages[0]!.reason!, /side-effect/);
    assert.deepEqual(
      report.stages.slice(1).map((s) => s.status),
      ['skipped', 'skipped', 'skipped'],
    );
  });

  it('fails a read tool whose computed DELETE its own tests exercise at the mock stage, naming the method and the side effect', async () => {
    const report = await verifyTool(
      { files: exampleWith('await ctx.fetch(url, { headers:', "await ctx.fetch(url, { method: ['DEL', 'ETE'].join(''), headers:") },
      sandbox,
    );
    assert.equal(report.stages[0]?.status, 'passed', 'a computed method is beyond the static rules');
    const mock = report.stages[1]!;
    assert.equal(mock.status, 'failed');
    const test = mock.tests!.find((t) => t.name === 'returns the rate the API reports');
    assert.equal(test?.passed, false);
    assert.match(
      test!.error!,
      /permission denied: DELETE to openexchangerates\.org is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS/,
    );
  });

  it('skips the live stage with a reason when no endpoint is safeRead', async () => {
    const spec = JSON.parse(example['api-spec.json']) as { endpoints: Array<{ safeRead: boolean }> };
    spec.endpoints[0]!.safeRead = false;
    const report = await verifyTool(
      {
        files: { ...example, 'api-spec.json': JSON.stringify(spec) },
        live: { docker, image },
        secrets: { OPENEXCHANGERATES_APP_ID: 'real-looking-id' },
      },
      sandbox,
    );
    assert.equal(report.passed, true);
    assert.deepEqual(report.stages[3], {
      stage: 'live',
      status: 'skipped',
      reason: 'api-spec.json marks no endpoint safeRead, so no real call is known to be harmless',
      durationMs: report.stages[3]!.durationMs,
    });
  });

  it('skips the live stage with the reason when this machine cannot resolve the API, so an unauthenticated tool verifies offline', async () => {
    const report = await verifyTool({ files: unauthenticated, live: { docker, image } }, sandbox);
    assert.equal(report.passed, true, formatForRepair(report));
    assert.deepEqual(
      report.stages.map((s) => s.status),
      ['passed', 'passed', 'passed', 'skipped'],
    );
    const live = report.stages[3]!;
    assert.match(
      live.reason!,
      /^live stage skipped: api\.holidays\.invalid could not be resolved from this machine \(offline\? DNS: E[A-Z_]+\)\. The environment could not reach the API, so no real call judged the tool$/,
    );
    assert.equal(live.tests, undefined, 'no tool code ran for the live stage: nothing is counted for or against it');
    assert.match(formatForRepair(report), /## live: SKIPPED\nreason: live stage skipped: api\.holidays\.invalid could not be resolved/);
  });

  it('skips, not fails, the live stage when the API host answers nothing that is the API (no route, or not its TLS)', async () => {
    // A public address that does not serve this name: offline nothing answers; online, or behind an
    // intercepting proxy, something answers without the API's certificate. Neither is the tool's doing.
    const report = await verifyTool(
      { files: unauthenticated, live: { docker, image, extraHosts: [`${OFFLINE_HOST}:93.184.216.34`] } },
      sandbox,
    );
    assert.equal(report.passed, true, formatForRepair(report));
    const live = report.stages[3]!;
    assert.equal(live.status, 'skipped');
    assert.match(
      live.reason!,
      /^live stage skipped: api\.holidays\.invalid:443 \(93\.184\.216\.34\) (could not be reached from this machine|answered, but not with the API's TLS): /,
    );
  });

  it('makes the live call through the egress proxy, which refuses a declared name that points at a private address', async () => {
    const report = await verifyTool(
      {
        dir: exampleDir,
        live: { docker, image, extraHosts: ['openexchangerates.org:10.20.30.40'] },
        secrets: { OPENEXCHANGERATES_APP_ID: 'some-id' },
      },
      sandbox,
    );
    const live = report.stages[3]!;
    assert.equal(live.status, 'failed');
    assert.match(live.reason!, /openexchangerates\.org resolves to 10\.20\.30\.40 in 10\.0\.0\.0\/8 \(private\)/);
    assert.match(live.reason!, /input \{"base":"USD","quote":"EUR"\}/, 'the input came from the schema example');
  });
});

describe('egress proxy', () => {
  let egress: Egress;
  let hostServer: net.Server;
  let hostPort: number;

  before(async () => {
    egress = await openEgress(docker, {
      image,
      allow: ['api.example.com', 'internal.example.com', 'meta.example.com'],
      // A write tool's proxy admits CONNECT: these tests exercise the destination rules through it.
      sideEffect: 'write',
      extraHosts: ['api.example.com:93.184.216.34', 'internal.example.com:10.1.2.3', 'meta.example.com:169.254.169.254'],
    });
    // A service on the host, listening on every interface: the tool container must not reach it.
    hostServer = net.createServer((s) => {
      s.on('error', () => undefined); // probes hang up abruptly
      s.end('host-service\n');
    });
    await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
    hostPort = (hostServer.address() as net.AddressInfo).port;
  });

  after(async () => {
    await egress.close();
    hostServer.close();
  });

  /** Runs plain node in a sandbox container on the egress network and returns what it printed. */
  async function inContainer(script: string, network = egress.network): Promise<string> {
    const r = await sandbox.runJob({ mode: 'exec', command: [NODE_PATH, '-e', script], files: {}, network, limits: { timeoutMs: 15_000 } });
    assert.equal(r.exitCode, 0, `${r.reason}\n${r.stderr}`);
    return r.stdout;
  }

  /** Sends one raw proxy request and prints the status line and the refusal reason header. */
  const ask = (request: string, proxyIp = egress.proxyIp) => `
    const s = require('net').connect(3128, ${JSON.stringify(proxyIp)});
    let got = '';
    s.on('connect', () => s.write(${JSON.stringify(request)}));
    s.on('data', (d) => { got += d; if (got.includes('\\r\\n\\r\\n')) { console.log(JSON.stringify(got.split('\\r\\n\\r\\n')[0])); s.destroy(); } });
    s.on('error', (e) => console.log(JSON.stringify('ERROR ' + e.message)));
  `;
  const head = async (request: string) => JSON.parse((await inContainer(ask(request))).trim()) as string;

  it('refuses a domain the tool did not declare (CONNECT and plain HTTP)', async () => {
    const connect = await head('CONNECT evil.example.net:443 HTTP/1.1\r\nHost: evil.example.net:443\r\n\r\n');
    assert.match(connect, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(
      connect,
      /x-forge-proxy-reason: evil\.example\.net is not a declared domain of this tool \(declared: api\.example\.com, internal\.example\.com, meta\.example\.com\)/,
    );
    const plain = await head('GET http://evil.example.net/x HTTP/1.1\r\nHost: evil.example.net\r\n\r\n');
    assert.match(plain, /^HTTP\/1\.1 403 Forbidden/);
    assert.ok((await egress.settledDecisions()).some((d) => d.decision === 'deny' && d.host === 'evil.example.net'));
  });

  it('refuses private, link-local and loopback destinations, even for declared names', async () => {
    const priv = await head('CONNECT internal.example.com:443 HTTP/1.1\r\nHost: internal.example.com:443\r\n\r\n');
    assert.match(priv, /^HTTP\/1\.1 403/);
    assert.match(priv, /resolves to 10\.1\.2\.3 in 10\.0\.0\.0\/8 \(private\)/);
    const metadata = await head('GET http://meta.example.com/latest/meta-data/ HTTP/1.1\r\nHost: meta.example.com\r\n\r\n');
    assert.match(metadata, /^HTTP\/1\.1 403/);
    assert.match(metadata, /169\.254\.0\.0\/16 \(link-local/);
    const loopback = await head('CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n');
    assert.match(loopback, /127\.0\.0\.0\/8 \(loopback\)/);
    const port = await head('CONNECT api.example.com:22 HTTP/1.1\r\nHost: api.example.com:22\r\n\r\n');
    assert.match(port, /port 22 is not allowed/);
  });

  it('lets a declared domain with a public address through its checks', async () => {
    // No internet here: the upstream may answer or fail (502), but the proxy must not refuse it.
    const allowed = await head('CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n');
    const decisions = (await egress.settledDecisions()).filter((d) => d.host === 'api.example.com' && d.port === 443);
    assert.doesNotMatch(allowed, / 403 /, JSON.stringify(decisions));
    assert.ok(
      decisions.length > 0 && decisions.every((d) => d.decision !== 'deny' && d.address === '93.184.216.34'),
      JSON.stringify(decisions),
    );
  });

  it('holds a tool to reads when it is not told otherwise: no CONNECT, no POST, GET judged by its destination', async () => {
    const reader = await openEgress(docker, { image, allow: ['api.example.com'], extraHosts: ['api.example.com:10.1.2.3'] });
    try {
      const run = async (request: string) => JSON.parse((await inContainer(ask(request, reader.proxyIp), reader.network)).trim()) as string;
      const connect = await run('CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n');
      assert.match(connect, /^HTTP\/1\.1 403/);
      assert.match(connect, /CONNECT tunnels are refused for a tool that declares sideEffect 'read'/);
      const post = await run('POST http://api.example.com/x HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\n\r\n');
      assert.match(post, /^HTTP\/1\.1 403/);
      assert.match(post, /POST to api\.example\.com is not allowed: the tool declares sideEffect 'read'/);
      const get = await run('GET https://api.example.com/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n');
      assert.match(
        get,
        /resolves to 10\.1\.2\.3 in 10\.0\.0\.0\/8 \(private\)/,
        'a GET passes the method check and meets the destination rules',
      );
    } finally {
      await reader.close();
    }
  });

  it('leaves the tool container no way out but the proxy', async () => {
    const bridge = (await docker.getNetwork('bridge').inspect()) as { IPAM: { Config: Array<{ Gateway?: string }> } };
    const hostIp = bridge.IPAM.Config[0]?.Gateway ?? '172.17.0.1';
    const internal = (await docker.getNetwork(egress.network).inspect()) as { IPAM: { Config: Array<{ Gateway?: string }> } };
    const targets: Array<[string, string, number]> = [
      ['proxy', egress.proxyIp, 3128],
      ['host via the default bridge', hostIp, hostPort],
      ['host via the internal bridge', internal.IPAM.Config[0]?.Gateway ?? '', hostPort],
      ['public address', '1.1.1.1', 443],
    ];
    const probe = (list: Array<[string, string, number]>) => `
      const net = require('net');
      const out = {};
      const list = ${JSON.stringify(list)};
      let left = list.length;
      const done = (name, v) => { if (name in out) return; out[name] = v; if (--left === 0) console.log(JSON.stringify(out)); };
      for (const [name, host, port] of list) {
        if (!host) { done(name, 'no address'); continue; }
        const s = net.connect({ host, port });
        s.setTimeout(2000, () => { s.destroy(); done(name, 'timeout'); });
        s.on('connect', () => { s.destroy(); done(name, 'connected'); });
        s.on('error', (e) => done(name, e.code));
      }
    `;
    const reach = JSON.parse((await inContainer(probe(targets))).trim()) as Record<string, string>;
    assert.equal(reach.proxy, 'connected', 'the proxy is reachable (so the other failures mean something)');
    assert.notEqual(reach['host via the default bridge'], 'connected');
    assert.notEqual(reach['host via the internal bridge'], 'connected');
    assert.notEqual(reach['public address'], 'connected');
    // Control: from a normal bridge the same host service is reachable, so the refusal above is the network's doing.
    const control = JSON.parse((await inContainer(probe([['host via the default bridge', hostIp, hostPort]]), 'bridge')).trim()) as Record<
      string,
      string
    >;
    assert.equal(control['host via the default bridge'], 'connected');
  });
});

describe('forge sandbox verify', () => {
  const cli = (args: string[]) =>
    spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { sandboxVerifyCommand } = await import(${JSON.stringify(path.join(root, 'cli/commands/sandbox-verify.ts'))}); process.exitCode = await sandboxVerifyCommand(${JSON.stringify(args)});`,
      ],
      { cwd: root, encoding: 'utf8', env: { ...process.env, FORGE_LOG_LEVEL: 'warn' }, timeout: 120_000 },
    );

  it('prints one JSON line and exits 0 for the example', () => {
    const r = cli([exampleDir, '--json', '--no-live']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const out = JSON.parse(lines[0]!) as { ok: boolean; stages: Array<{ stage: string; status: string }> };
    assert.equal(out.ok, true);
    assert.deepEqual(
      out.stages.map((s) => `${s.stage}:${s.status}`),
      ['static:passed', 'mock:passed', 'forge-checks:passed', 'live:skipped'],
    );
  });

  it('verifies an unauthenticated tool offline and prints why its live stage was skipped', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-verify-offline-'));
    try {
      for (const [file, text] of Object.entries(unauthenticated)) fs.writeFileSync(path.join(dir, file), text);
      const human = cli([dir]);
      assert.equal(human.status, 0, human.stdout + human.stderr);
      assert.match(human.stdout, /^verified: /);
      assert.match(
        human.stdout,
        /live +SKIPPED .*— live stage skipped: api\.holidays\.invalid could not be resolved from this machine \(offline\?/,
      );
      const json = cli([dir, '--json']);
      assert.equal(json.status, 0, json.stderr);
      const out = JSON.parse(json.stdout.trim()) as { ok: boolean; stages: Array<{ stage: string; status: string; reason?: string }> };
      assert.equal(out.ok, true);
      assert.match(out.stages.find((s) => s.stage === 'live')?.reason ?? '', /could not be resolved from this machine \(offline\?/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits non-zero with the failing stage and its reason', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-verify-cli-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'tool.ts'),
        example['tool.ts'].replace("import { z } from 'zod';", "import { z } from 'zod';\nimport { execSync } from 'node:child_process';"),
      );
      fs.writeFileSync(path.join(dir, 'tool.test.ts'), example['tool.test.ts']);
      const json = cli([dir, '--json']);
      assert.equal(json.status, 1);
      const out = JSON.parse(json.stdout.trim()) as { ok: boolean; failedStage: string; reason: string };
      assert.equal(out.ok, false);
      assert.equal(out.failedStage, 'static');
      assert.match(out.reason, /child-process/);
      const human = cli([dir]);
      assert.equal(human.status, 1);
      assert.match(human.stdout, /static +FAILED/);
      assert.match(human.stdout, /tool\.ts:2:\d+ \[child-process\]/);
      assert.match(human.stderr, /failed at the static stage/);
      // No worker polls this environment's queues: Forge is not up, and the CLI says it verified itself.
      assert.match(human.stderr, /^verifying in this process: Forge is not up \(/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('forge sandbox verify on the running Forge', () => {
  let h: Harness;
  let cli: ReturnType<typeof harnessCli>;
  const ranHere = /^verifying in this process: /m;

  before(async () => {
    // No model is asked anything here: verification needs none.
    h = await startHarness({
      scenarios: [{ name: 'verify-cli', rules: [{ responses: [{ error: { status: 400, message: 'verify-cli: not scripted' } }] }] }],
    });
    cli = harnessCli(h, { user: 'tester', timeoutMs: 120_000 });
  });
  after(() => h?.close());

  /** The verification workflows that ran on the harness's queue. */
  async function verifyRuns(): Promise<number> {
    let n = 0;
    for await (const _ of h.client.workflow.list({
      query: `WorkflowType = 'verifyFolderWorkflow' AND TaskQueue = '${h.cfg.FORGE_TASK_QUEUE}'`,
    }))
      n++;
    return n;
  }

  it("has the sandbox worker verify the folder and prints the same report as the CLI's own process", async () => {
    const r = await cli('sandbox', 'verify', exampleDir, '--json', '--no-live');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, ranHere);
    const out = r.json() as {
      ok: boolean;
      dir: string;
      passed: boolean;
      stages: Array<{ stage: string; status: string; reason?: string }>;
    };
    assert.equal(out.ok, true);
    assert.equal(out.dir, exampleDir);
    assert.deepEqual(
      out.stages.map((s) => `${s.stage}:${s.status}`),
      ['static:passed', 'mock:passed', 'forge-checks:passed', 'live:skipped'],
    );
    assert.equal(out.stages[3]?.reason, 'live smoke disabled for this run', '--no-live reached the worker');
    await until('the verification workflow is listed', async () => (await verifyRuns()) === 1);
  });

  it('exits 1 with the failing stage, its findings and the line on stderr, as before', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-verify-worker-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'tool.ts'),
        example['tool.ts'].replace('ctx.env.OPENEXCHANGERATES_APP_ID', 'process.env.OPENEXCHANGERATES_APP_ID'),
      );
      fs.writeFileSync(path.join(dir, 'tool.test.ts'), HANGING_TESTS);
      const human = await cli('sandbox', 'verify', dir, '--name', 'fetch_exchange_rate');
      assert.equal(human.code, 1, human.stderr);
      assert.doesNotMatch(human.stderr, ranHere);
      assert.match(human.stdout, /^NOT verified: /);
      assert.match(human.stdout, /static +FAILED .*\[io-outside-ctx\]|tool\.ts:\d+:\d+ \[io-outside-ctx\]/);
      assert.match(human.stdout, /mock +SKIPPED +— not run: the static stage failed/);
      assert.match(human.stderr, /failed at the static stage/);
      const emptyDir = fs.mkdtempSync(path.join(dir, 'empty-'));
      const empty = await cli('sandbox', 'verify', emptyDir, '--json');
      assert.equal(empty.code, 2, empty.stderr);
      assert.match(String(empty.json().message), /has none of tool\.ts, tool\.test\.ts, api-spec\.json/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a secret named with --env in its own process, and says so in one line', async () => {
    const r = await cli('sandbox', 'verify', exampleDir, '--json', '--env', 'OPENEXCHANGERATES_APP_ID=not-a-real-id', '--no-live');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.match(new RegExp(ranHere.source, 'gm'))?.length, 1, r.stderr);
    assert.match(r.stderr, /--env OPENEXCHANGERATES_APP_ID stays in this process/);
    assert.deepEqual(
      (r.json().stages as Array<{ stage: string; status: string }>).map((s) => `${s.stage}:${s.status}`),
      ['static:passed', 'mock:passed', 'forge-checks:passed', 'live:skipped'],
    );
  });
});
