/** The sandbox's pure parts: the ctx capability layer, the runner protocol, the rootfs tar writer, CLI args. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { declaredEnvOnly } from '../../app/sandbox.ts';
import { parseSandboxExecArgs } from '../../cli/commands/sandbox-exec.ts';
import { tarHeader } from '../../infra/sandbox-image/tar.ts';
import { createToolContext, domainAllowed, PermissionDeniedError } from '../../runner/ctx.ts';
import type { LogEntry } from '../../runner/protocol.ts';
import { jobMessageSchema, READY_MARKER, RESULT_MARKER, splitRunnerOutput } from '../../runner/protocol.ts';
import { summarize } from '../../runner/test-mode.ts';
import { containerSpec } from '../../services/sandbox/container.ts';
import { DEFAULT_LIMITS, resolveLimits } from '../../services/sandbox/types.ts';

describe('ctx', () => {
  it('matches declared domains exactly or by *.suffix', () => {
    assert.ok(domainAllowed('api.example.com', ['api.example.com']));
    assert.ok(domainAllowed('API.Example.com.', ['api.example.com']));
    assert.ok(domainAllowed('a.b.example.org', ['*.example.org']));
    assert.ok(!domainAllowed('example.org', ['*.example.org']), '*.x does not cover x itself');
    assert.ok(!domainAllowed('evilexample.org', ['*.example.org']));
    assert.ok(!domainAllowed('api.example.com.evil.net', ['api.example.com']));
  });

  it('refuses undeclared fetches with PermissionDenied naming the domain and the declared list', async () => {
    const seen: string[] = [];
    const ctx = createToolContext({
      permissions: { network: ['api.example.com'], env: [] },
      env: {},
      signal: new AbortController().signal,
      logSink: () => undefined,
      fetchImpl: (async (url: URL) => {
        seen.push(String(url));
        return new Response('ok');
      }) as unknown as typeof fetch,
    });
    await assert.rejects(ctx.fetch('https://evil.net/x'), (err: unknown) => {
      assert.ok(err instanceof PermissionDeniedError);
      assert.match(err.message, /"evil\.net".*declared network: api\.example\.com/);
      return true;
    });
    await assert.rejects(ctx.fetch('file:///etc/passwd'), PermissionDeniedError);
    assert.equal(await (await ctx.fetch('https://api.example.com/v1')).text(), 'ok');
    assert.deepEqual(seen, ['https://api.example.com/v1']);
  });

  it('holds a read tool to GET, HEAD and OPTIONS, and sends the method it checked', async () => {
    const sent: string[] = [];
    const ctx = createToolContext({
      permissions: { network: ['api.example.com'], env: [] },
      sideEffect: 'read',
      env: {},
      signal: new AbortController().signal,
      logSink: () => undefined,
      fetchImpl: (async (_url: URL, init: RequestInit) => {
        sent.push(String(init.method));
        return new Response('ok');
      }) as unknown as typeof fetch,
    });
    for (const method of ['POST', 'put', 'PATCH', 'DELETE', 'TRACE']) {
      await assert.rejects(ctx.fetch('https://api.example.com/x', { method }), (err: unknown) => {
        assert.ok(err instanceof PermissionDeniedError);
        assert.equal(err.code, 'PERMISSION_DENIED');
        assert.match(
          err.message,
          new RegExp(`${method.toUpperCase()} to api\\.example\\.com is not allowed: the tool declares sideEffect 'read'`),
        );
        return true;
      });
    }
    for (const method of [undefined, 'GET', 'head', 'OPTIONS'])
      await ctx.fetch('https://api.example.com/x', method ? { method } : undefined);
    assert.deepEqual(sent, ['GET', 'GET', 'head', 'OPTIONS']);
    const write = createToolContext({
      permissions: { network: ['api.example.com'], env: [] },
      sideEffect: 'write',
      env: {},
      signal: new AbortController().signal,
      logSink: () => undefined,
      fetchImpl: (async () => new Response('ok')) as unknown as typeof fetch,
    });
    assert.equal(await (await write.fetch('https://api.example.com/x', { method: 'DELETE' })).text(), 'ok', 'a write tool may');
  });

  it('exposes only declared env vars and collects logs', () => {
    const logs: LogEntry[] = [];
    const ctx = createToolContext({
      permissions: { network: [], env: ['A'] },
      env: { A: '1', B: '2' },
      signal: new AbortController().signal,
      logSink: (e) => logs.push(e),
    });
    assert.deepEqual({ ...ctx.env }, { A: '1' });
    assert.equal(ctx.env.B, undefined);
    ctx.log.warn('careful', { n: 1 });
    assert.equal(logs[0]?.level, 'warn');
    assert.deepEqual(logs[0]?.fields, { n: 1 });
  });
});

describe('runner protocol', () => {
  it('takes the last result line and strips the ready marker', () => {
    const fake = `${RESULT_MARKER}{"ok":true,"durationMs":1}`;
    const out = `${READY_MARKER}\nhello\n${fake}\n${RESULT_MARKER}{"ok":false,"durationMs":5,"error":{"code":"X","message":"m"}}\n`;
    const split = splitRunnerOutput(out);
    assert.equal(split.result?.ok, false);
    assert.equal(split.stdout.startsWith('hello\n'), true);
    assert.equal(splitRunnerOutput('no result').result, undefined);
    assert.ok(splitRunnerOutput(`${RESULT_MARKER}{broken\n`).malformed);
  });

  it('rejects job files that escape the job directory', () => {
    for (const name of ['../x', '/etc/passwd', 'a/../../b', './x']) {
      assert.equal(jobMessageSchema.safeParse({ mode: 'call', files: { [name]: '' }, limits: { timeoutMs: 1000 } }).success, false, name);
    }
    assert.ok(jobMessageSchema.safeParse({ mode: 'call', files: { 'lib/tool.mjs': '' }, limits: { timeoutMs: 1000 } }).success);
  });

  it('scores a test report: coverage = passed / total, skipped tests not counted', () => {
    const r = summarize([
      { name: 'a', path: [], pass: true, skipped: false, durationMs: 1 },
      { name: 'b', path: [], pass: false, skipped: false, durationMs: 1, error: 'x' },
      { name: 'c', path: [], pass: true, skipped: true, durationMs: 0 },
    ]);
    assert.deepEqual(
      { total: r.total, passed: r.passed, failed: r.failed, coverage: r.coverage },
      { total: 2, passed: 1, failed: 1, coverage: 0.5 },
    );
  });
});

describe('container spec', () => {
  it('is hardened: no network, read-only root, small noexec /tmp, no caps, non-root, limits, no mounts', () => {
    const spec = containerSpec({ image: 'img', limits: DEFAULT_LIMITS, jobId: 'j1' });
    const host = spec.HostConfig!;
    assert.equal(host.NetworkMode, 'none');
    assert.equal(host.ReadonlyRootfs, true);
    assert.match(host.Tmpfs!['/tmp']!, /noexec.*nosuid.*size=16m/);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
    assert.equal(spec.User, '10001:10001');
    assert.equal(host.PidsLimit, 64);
    assert.equal(host.Memory, 128 * 1024 * 1024);
    assert.equal(host.MemorySwap, host.Memory);
    assert.equal(host.NanoCpus, 5e8);
    assert.equal(host.Binds, undefined);
    assert.equal(host.Mounts, undefined);
    assert.equal(spec.Labels!['forge.sandbox'], '1');
    assert.equal(spec.Labels!['forge.job'], 'j1');
    assert.equal(spec.Cmd![0], '/usr/bin/node', 'imported images have no Cmd: the command is absolute');
    const onEgress = containerSpec({ image: 'img', limits: DEFAULT_LIMITS, jobId: 'j', network: 'forge-egress' });
    assert.equal(onEgress.HostConfig!.NetworkMode, 'forge-egress');
    // The runner learns it is on an egress network from its command, before any job: its judged
    // process then preloads the proxy-aware fetch while the container waits.
    assert.deepEqual(spec.Cmd!.slice(-2), ['/opt/forge/runner.mjs', 'idle'], 'offline: no preload');
    assert.deepEqual(onEgress.Cmd!.slice(-3), ['/opt/forge/runner.mjs', 'idle', '--egress']);
  });

  it('validates limits', () => {
    assert.deepEqual(resolveLimits({ timeoutMs: 5000 }), { ...DEFAULT_LIMITS, timeoutMs: 5000 });
    assert.throws(() => resolveLimits({ memoryMb: 1 }));
  });
});

describe('tar writer', () => {
  it('writes ustar headers with a valid checksum', () => {
    const h = tarHeader({ kind: 'file', path: '/etc/passwd', data: Buffer.from('x'), mode: 0o644 }, 1);
    assert.equal(h.length, 512);
    assert.equal(h.toString('ascii', 0, 10), 'etc/passwd');
    assert.equal(h.toString('ascii', 257, 262), 'ustar');
    const stored = parseInt(h.toString('ascii', 148, 154), 8);
    const copy = Buffer.from(h);
    copy.fill(' ', 148, 156);
    assert.equal(
      stored,
      copy.reduce((a, b) => a + b, 0),
    );
    const long = tarHeader({ kind: 'dir', path: '/' + 'd/'.repeat(60) + 'end' }, 0);
    assert.ok(long.toString('utf8', 345, 500).replace(/\0+$/, '').length > 0, 'long paths use the prefix field');
  });
});

describe('forge sandbox exec arguments', () => {
  it('parses the tool file, JSON input, named env and timeout', () => {
    const a = parseSandboxExecArgs(['package.json', '--input', '{"a":1}', '--env', 'KEY', '--env', 'X=y', '--timeout', '500', '--json'], {
      KEY: 'v',
    });
    assert.deepEqual(a.input, { a: 1 });
    assert.deepEqual(a.env, { KEY: 'v', X: 'y' });
    assert.equal(a.timeoutMs, 500);
    assert.equal(a.json, true);
    assert.throws(() => parseSandboxExecArgs(['package.json', '--input', '{nope']), /--input.*not valid JSON/);
    assert.throws(() => parseSandboxExecArgs([]), /missing <tool-file>/);
    assert.throws(() => parseSandboxExecArgs(['no-such-tool.ts']), /does not exist/);
  });
});

describe('forge sandbox exec --env, filtered on the host', () => {
  const source = (env: string) => `import { z } from 'zod';
export const manifest = { name: 'x_tool', description: 'x', sideEffect: 'read', permissions: { network: [], env: ${env} }, input: z.object({}), output: z.object({}) };
export async function run() { return {}; }`;

  it('keeps the declared variables and names the others, before anything is sent', () => {
    assert.deepEqual(declaredEnvOnly(source("['API_KEY']"), { API_KEY: 'k', AWS_SECRET: 's', OTHER: 'o' }), {
      env: { API_KEY: 'k' },
      withheld: { names: ['AWS_SECRET', 'OTHER'], reason: "not in the manifest's permissions.env (declared: API_KEY)" },
    });
    assert.deepEqual(declaredEnvOnly(source('[]'), { API_KEY: 'k' }).env, {});
    assert.deepEqual(declaredEnvOnly(source("['API_KEY']"), {}), { env: {} });
  });

  it('sends nothing when the manifest cannot be read without running the tool', () => {
    const computed = declaredEnvOnly(source("['API' + '_KEY']"), { API_KEY: 'k' });
    assert.deepEqual(computed.env, {});
    assert.match(
      computed.withheld!.reason,
      /could not be read without running the tool \(manifest\.permissions\.env entries must be string literals\)/,
    );
    const none = declaredEnvOnly('export const run = () => 1;', { API_KEY: 'k' });
    assert.deepEqual(none.env, {});
    assert.deepEqual(none.withheld?.names, ['API_KEY']);
  });
});

describe('orphan detection', () => {
  it('knows its own containers, and a dead or restarted owner on this host', async () => {
    const { ownerIsGone } = await import('../../services/sandbox/docker.ts');
    const self = `h:${process.pid}:aaaa1111`;
    assert.equal(ownerIsGone(self, self, 'h'), false);
    assert.equal(ownerIsGone(`h:${process.pid}:bbbb2222`, self, 'h'), true, 'same pid, other nonce: a predecessor');
    assert.equal(ownerIsGone('h:999999999:cccc', self, 'h'), true, 'no such process');
    assert.equal(ownerIsGone(`h:${process.ppid}:dddd`, self, 'h'), false, 'a live process on this host');
    assert.equal(ownerIsGone('other-host:1:x', self, 'h'), false, 'cannot tell for another host');
    assert.equal(ownerIsGone(undefined, self, 'h'), true);
  });
});
