/**
 * A person's levers on the catalog and the improve cycle's building blocks, against real Postgres
 * and a real catalog folder: the evaluator over metered calls (forge tools score), pin/unpin,
 * rollback (and what it refuses), archive (no longer found), regression cases handed to a
 * replacement, and the alert webhook, served by a real local HTTP server.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { listAudit } from '../../services/catalog/audit.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { type RegisterInput, ToolNotFoundError } from '../../services/catalog/store.ts';
import { createToolCalls } from '../../services/catalog/tool-calls.ts';
import { type AlertPayload, createAlerts } from '../../services/control/alerts.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

// ---------------------------------------------------------------------------------------------
// A webhook: records what it is sent; answers `failFirst` requests with 500 first.

interface Hook {
  url: string;
  received: AlertPayload[];
  requests: number;
  failFirst: number;
  close(): Promise<void>;
}

async function webhook(failFirst = 0): Promise<Hook> {
  const hook = { received: [] as AlertPayload[], requests: 0, failFirst } as Hook;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      hook.requests++;
      if (hook.requests <= hook.failFirst) {
        res.writeHead(500).end('not now');
        return;
      }
      hook.received.push(JSON.parse(body) as AlertPayload);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/forge`;
  hook.close = () => new Promise((resolve) => server.close(() => resolve()));
  return hook;
}

/** A URL nothing listens on: a port that was bound a moment ago and closed. */
async function deadUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/hooks/forge`;
}

// ---------------------------------------------------------------------------------------------

const draft = (
  name: string,
  key: string,
  n: number,
  extra: { description?: string; status?: RegisterInput['status'] } = {},
): RegisterInput => ({
  name,
  source: `export const manifest = {};\nexport async function run(input) {\n  return { n: ${n}, input };\n}\n`,
  tests: `import { run } from './tool.ts';\n// expects n = ${n}\n`,
  manifest: {
    description: extra.description ?? `Echo tool ${name} for tests`,
    sideEffect: 'read',
    permissions: { network: [], env: [] },
    inputSchema: { type: 'object', properties: { text: { type: 'string', description: 'the text' } }, required: ['text'] },
    outputSchema: { type: 'object' },
  },
  testCases: [{ name: `case ${n}`, input: { text: `input ${n}` }, expected: { n } }],
  idempotencyKey: key,
  ...(extra.status ? { status: extra.status } : {}),
});

describe('tools admin', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let hook: Hook;
  let root: string;
  let registry: Registry;
  const by = 'alice';

  before(async () => {
    db = await scratchDb('toolsadmin');
    dir = await scratchDir('toolsadmin');
    hook = await webhook();
  });

  beforeEach(async () => {
    root = path.join(dir.dir, `tools-${Math.random().toString(36).slice(2, 8)}`);
    await db.sql`truncate tools, tool_versions, tool_test_cases, invocations, audit_log, tool_embeddings, improve_runs cascade`;
    hook.received.length = 0;
    hook.requests = 0;
    hook.failFirst = 0;
    registry = createRegistry({ sql: db.sql, root, alerts: createAlerts({ url: hook.url, backoffMs: 20 }) });
  });

  after(async () => {
    await hook?.close();
    await db?.drop();
    await dir?.remove();
  });

  let seq = 0;
  async function meter(tool: string, version: number, calls: { success: boolean; latencyMs: number; error?: string }[]) {
    for (const c of calls)
      await registry.recordInvocation({ idempotencyKey: `wf-${++seq}:call`, tool, version, input: { text: `t${seq}` }, ...c });
  }

  const current = async (name: string) => (await registry.getCurrent(name))?.version;
  const audits = async (kind: string) => listAudit(db.sql, { kind, limit: 100 });

  describe('score', () => {
    it('judges a tool by its current version’s last calls, with the errors grouped', async () => {
      await registry.registerVersion(draft('flaky_lookup', 'k1', 1));
      await registry.registerVersion(draft('steady_tool', 'k2', 1));
      await registry.registerVersion(draft('new_tool', 'k3', 1));
      // newest last: 6 successes at 2.5 s, three 429s, one timeout
      await meter('flaky_lookup', 1, [
        { success: true, latencyMs: 2500 },
        { success: false, latencyMs: 50, error: 'HTTPError: 429 Too Many Requests' },
        { success: false, latencyMs: 4000, error: 'timeout after 4000 ms' },
        { success: true, latencyMs: 2500 },
        { success: false, latencyMs: 50, error: '429 Too Many Requests' },
        { success: true, latencyMs: 2500 },
        { success: false, latencyMs: 50, error: 'Error: 429 Too Many Requests' },
        ...Array.from({ length: 3 }, () => ({ success: true, latencyMs: 2500 })),
      ]);
      await meter(
        'steady_tool',
        1,
        Array.from({ length: 6 }, () => ({ success: true, latencyMs: 120 })),
      );
      await meter('new_tool', 1, [{ success: false, latencyMs: 10, error: 'boom' }]);

      const flaky = await registry.scoreTool('flaky_lookup');
      assert.equal(flaky.verdict, 'rewrite');
      assert.equal(flaky.score, 0.594);
      assert.equal(flaky.version, 1);
      assert.equal(flaky.totalCalls, 10);
      assert.equal(
        flaky.reason,
        'High failure rate (40 %): 429 Too Many Requests ×3, timeout after 4000 ms ×1; Inconsistent latency (50 ms to 4000 ms)',
      );

      const all = await registry.scoreAll();
      assert.deepEqual(
        all.map((s) => [s.tool, s.verdict]),
        [
          ['flaky_lookup', 'rewrite'],
          ['new_tool', 'insufficient-data'],
          ['steady_tool', 'healthy'],
        ],
      );

      // a new version starts from no evidence: v1's failures do not condemn v2
      await registry.registerVersion(draft('flaky_lookup', 'k4', 2));
      const v2 = await registry.scoreTool('flaky_lookup');
      assert.deepEqual(
        { version: v2.version, verdict: v2.verdict, calls: v2.stats.calls },
        { version: 2, verdict: 'insufficient-data', calls: 0 },
      );
      assert.equal((await registry.scoreTool('flaky_lookup', { version: 'all' })).stats.calls, 10);
      await assert.rejects(registry.scoreTool('no_such_tool'), ToolNotFoundError);
    });
  });

  describe('pin and unpin', () => {
    it('pins a tool once, shows it, and audits each change', async () => {
      await registry.registerVersion(draft('echo_tool', 'k1', 1));
      assert.deepEqual(await registry.pin('echo_tool', { by, reason: 'hand-tuned' }), { name: 'echo_tool', pinned: true, changed: true });
      assert.equal((await registry.pin('echo_tool', { by })).changed, false);
      assert.equal((await registry.list()).find((t) => t.name === 'echo_tool')?.pinned, true);
      assert.equal((await registry.show('echo_tool')).pinned, true);
      assert.equal((await registry.scoreTool('echo_tool')).pinned, true);
      assert.deepEqual(await registry.unpin('echo_tool', { by }), { name: 'echo_tool', pinned: false, changed: true });
      assert.equal((await registry.show('echo_tool')).pinned, false);

      const log = [...(await audits('pin')), ...(await audits('unpin'))];
      assert.deepEqual(log.map((a) => [a.kind, a.tool]).sort(), [
        ['pin', 'echo_tool'],
        ['unpin', 'echo_tool'],
      ]);
      assert.match(log.find((a) => a.kind === 'pin')?.reasoning ?? '', /alice pinned echo_tool: hand-tuned/);
      await assert.rejects(registry.pin('no_such_tool', { by }), ToolNotFoundError);
      assert.equal(hook.received.length, 0, 'a pin is audited, not alerted');
    });
  });

  describe('rollback', () => {
    async function threeVersions() {
      await registry.registerVersion(draft('echo_tool', 'k1', 1));
      await registry.registerVersion(draft('echo_tool', 'k2', 2));
      // v3 failed verification: registered for the record, never current
      await registry.registerVersion(draft('echo_tool', 'k3', 3, { status: 'failed' }));
      assert.equal(await current('echo_tool'), 2);
    }

    it('makes the previous verified version current, seen by the very next call, audited and alerted', async () => {
      await threeVersions();
      const gate = createToolCalls({ registry });
      assert.equal((await gate.toolGate({ name: 'echo_tool' })).version, 2);
      // a person edited v1's folder since: what runs after the rollback is what v1 registered
      const v1 = path.join(root, 'echo_tool', 'v1', 'tool.ts');
      const registered = await fs.readFile(v1, 'utf8');
      await fs.writeFile(v1, '// edited by hand\n');
      await registry.setStatus('echo_tool', 'quarantined');

      const r = await registry.rollback('echo_tool', { by, reason: 'v2 answers 429' });
      assert.deepEqual(
        { from: r.from, to: r.to, changed: r.changed, status: r.status, delivered: r.alert?.delivered },
        { from: 2, to: 1, changed: true, status: 'active', delivered: true },
      );
      assert.equal(await current('echo_tool'), 1);
      assert.equal((await gate.toolGate({ name: 'echo_tool' })).version, 1, 'the next call runs v1, no restart');
      assert.equal(await fs.readFile(path.join(root, 'echo_tool', 'current'), 'utf8'), 'v1\n');
      assert.equal(await fs.readFile(v1, 'utf8'), registered);
      assert.equal((await registry.show('echo_tool')).status, 'active', 'a rollback lifts the quarantine');

      const [entry] = await audits('rollback');
      assert.deepEqual({ tool: entry?.tool, version: entry?.version, id: entry?.id }, { tool: 'echo_tool', version: 1, id: r.auditId });
      assert.match(entry?.reasoning ?? '', /alice rolled echo_tool back from v2 to v1: v2 answers 429/);
      assert.equal(hook.received.length, 1);
      const alert = hook.received[0]!;
      assert.deepEqual(
        { kind: alert.kind, tool: alert.tool, from: alert.fromVersion, to: alert.toVersion, by: alert.by, source: alert.source },
        { kind: 'rollback', tool: 'echo_tool', from: 2, to: 1, by, source: 'forge' },
      );
      assert.equal(alert.text, 'Forge: echo_tool rolled back v2 → v1 by alice: v2 answers 429');

      // and forward again, by name
      const forward = await registry.rollback('echo_tool', { by, to: 2 });
      assert.deepEqual([forward.from, forward.to, await current('echo_tool')], [1, 2, 2]);
      // to the version already current: nothing written
      const same = await registry.rollback('echo_tool', { by, to: 2 });
      assert.deepEqual({ changed: same.changed, auditId: same.auditId }, { changed: false, auditId: null });
      assert.equal((await audits('rollback')).length, 2);
    });

    it('refuses, with what to do instead, an unknown tool or version, a failed version, and nothing earlier', async () => {
      await threeVersions();
      await assert.rejects(registry.rollback('no_such_tool', { by }), ToolNotFoundError);
      await assert.rejects(registry.rollback('echo_tool', { by, to: 9 }), (err: Error & { code?: string; fix?: string }) => {
        assert.equal(err.code, 'ROLLBACK_REFUSED');
        assert.match(err.message, /echo_tool: it has no v9 \(versions: v1, v2, v3\)/);
        assert.match(err.fix ?? '', /forge tools history echo_tool/);
        return true;
      });
      await assert.rejects(registry.rollback('echo_tool', { by, to: 3 }), /v3 failed verification and never ran/);
      await registry.rollback('echo_tool', { by });
      await assert.rejects(registry.rollback('echo_tool', { by }), /no verified version before the current v1/);
      assert.equal(await current('echo_tool'), 1, 'a refused rollback changes nothing');
      await registry.archiveTool('echo_tool', 'replaced', { by });
      await assert.rejects(registry.rollback('echo_tool', { by, to: 2 }), /it is archived \(replaced\) and no longer offered/);
    });
  });

  describe('archive', () => {
    it('keeps the tool on disk and in history but no longer offers it', async () => {
      const words = { description: 'Count the words in a text' };
      await registry.registerVersion(draft('count_words', 'k1', 1, words));
      await registry.registerVersion(draft('count_words', 'k2', 2, words));
      const calls = createToolCalls({ registry });
      const offered = async () => (await calls.offerTools({ query: 'count the words in this text' })).tools.map((t) => t.name);
      assert.deepEqual(await offered(), ['count_words']);
      assert.deepEqual(
        (await registry.search('count the words in this text')).map((h) => h.name),
        ['count_words'],
      );

      const r = await registry.archiveTool('count_words', 'repair failed: fails on non-ASCII input', { by: 'improve-count_words' });
      assert.deepEqual(
        { previous: r.previousStatus, version: r.version, changed: r.changed, delivered: r.alert?.delivered },
        { previous: 'active', version: 2, changed: true, delivered: true },
      );
      assert.deepEqual(await registry.search('count the words in this text'), [], 'search no longer finds it');
      assert.deepEqual(await offered(), []);
      assert.equal((await calls.toolGate({ name: 'count_words' })).approval.blocked, true, 'nor does the gate run it');
      assert.deepEqual(
        (await registry.search('count the words in this text', { includeInactive: true })).map((h) => h.name),
        ['count_words'],
      );
      const listed = (await registry.list()).find((t) => t.name === 'count_words');
      assert.deepEqual(
        { status: listed?.status, reason: listed?.archiveReason, at: typeof listed?.archivedAt },
        { status: 'archived', reason: 'repair failed: fails on non-ASCII input', at: 'string' },
      );
      assert.equal((await registry.history('count_words')).length, 2);
      assert.deepEqual((await fs.readdir(path.join(root, 'count_words'))).sort(), ['current', 'v1', 'v2']);

      const again = await registry.archiveTool('count_words', 'again');
      assert.equal(again.changed, false);
      assert.equal((await audits('archive')).length, 1);
      assert.equal(hook.received.length, 1);
      assert.deepEqual(
        { kind: hook.received[0]?.kind, tool: hook.received[0]?.tool, reason: hook.received[0]?.reason },
        { kind: 'archive', tool: 'count_words', reason: 'repair failed: fails on non-ASCII input' },
      );
    });

    it('hands the archived tool’s regression cases to its replacement, once', async () => {
      await registry.registerVersion(draft('count_words', 'k1', 1));
      await registry.registerVersion(draft('count_words', 'k2', 2));
      await registry.archiveTool('count_words', 'degraded', { by });
      await registry.registerVersion(draft('count_words_v2', 'k3', 1));

      const r = await registry.copyTestCases('count_words', 'count_words_v2', { by });
      assert.deepEqual(
        { version: r.version, copied: r.copied, cases: r.cases },
        { version: 1, copied: 2, cases: ['count_words: case 1', 'count_words: case 2'] },
      );
      const rows = await db.sql<{ test_name: string; input: unknown }[]>`
        select test_name, input from tool_test_cases where name = 'count_words_v2' order by test_name`;
      assert.deepEqual(
        rows.map((c) => [c.test_name, c.input]),
        [
          ['case 1', { text: 'input 1' }],
          ['count_words: case 1', { text: 'input 1' }],
          ['count_words: case 2', { text: 'input 2' }],
        ],
      );
      assert.equal((await registry.copyTestCases('count_words', 'count_words_v2', { by })).copied, 0, 'idempotent');
      assert.equal((await registry.show('count_words')).replacedBy, 'count_words_v2');
      assert.equal((await audits('inherit_cases')).length, 1);
      await assert.rejects(registry.copyTestCases('count_words', 'no_such_tool'), ToolNotFoundError);
    });
  });

  describe('alerts', () => {
    const event = {
      kind: 'promotion' as const,
      tool: 'echo_tool',
      fromVersion: 1,
      toVersion: 2,
      reason: 'the gate passed',
      by: 'improve',
      id: 'wf-1:promotion',
    };

    it('announces a promotion: audited once, posted with the audit key', async () => {
      await registry.registerVersion(draft('echo_tool', 'k1', 1));
      await registry.registerVersion(draft('echo_tool', 'k2', 2));
      const input = {
        tool: 'echo_tool',
        fromVersion: 1,
        toVersion: 2,
        reason: 'the gate passed',
        workflowId: 'improve-echo_tool-1',
        details: { gate: '12/12 cases' },
      };
      const first = await registry.recordPromotion(input);
      const retried = await registry.recordPromotion(input);
      assert.equal(first.auditId, retried.auditId, 'a retried activity audits once');
      assert.equal((await audits('promotion')).length, 1);
      assert.equal(first.alert.delivered, true);
      assert.equal(hook.received.length, 2, 'delivery is at least once…');
      assert.equal(hook.received[0]?.id, hook.received[1]?.id, '…with one id a receiver can drop the repeat by');
      assert.deepEqual(
        { kind: hook.received[0]?.kind, to: hook.received[0]?.toVersion, details: hook.received[0]?.details, text: hook.received[0]?.text },
        {
          kind: 'promotion',
          to: 2,
          details: { gate: '12/12 cases' },
          text: 'Forge: echo_tool promoted v1 → v2 by improve: the gate passed',
        },
      );
    });

    it('retries a webhook that fails twice, then succeeds', async () => {
      hook.failFirst = 2;
      const delivery = await createAlerts({ url: hook.url, backoffMs: 20 }).post(event);
      assert.deepEqual(delivery, { delivered: true, attempts: 3, status: 204 });
      assert.equal(hook.requests, 3);
      assert.equal(hook.received.length, 1);
    });

    it('gives up on a webhook that is down, within its deadline, without throwing', async () => {
      const started = Date.now();
      const delivery = await createAlerts({ url: await deadUrl(), attempts: 3, backoffMs: 20 }).post(event);
      assert.equal(delivery.delivered, false);
      assert.equal(delivery.attempts, 3);
      assert.match(delivery.error ?? '', /fetch failed|ECONNREFUSED/);
      assert.ok(Date.now() - started < 5000);

      const slow = await createAlerts({ url: await deadUrl(), attempts: 10, backoffMs: 400, deadlineMs: 1000 }).post(event);
      assert.equal(slow.delivered, false);
      assert.ok(slow.attempts < 10, 'the deadline, not the attempt count, ended it');
      assert.ok(Date.now() - started < 5000);
    });

    it('does not retry a webhook that refuses the alert, and posts nothing without one', async () => {
      const refusing = http.createServer((_req, res) => res.writeHead(400).end('bad'));
      await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/`;
        assert.deepEqual(await createAlerts({ url, backoffMs: 20 }).post(event), {
          delivered: false,
          attempts: 1,
          status: 400,
          error: 'the webhook answered 400',
        });
      } finally {
        await new Promise((resolve) => refusing.close(resolve));
      }
      assert.deepEqual(await createAlerts({ url: null }).post(event), { delivered: false, skipped: 'no-webhook', attempts: 0 });
    });

    it('an archive whose webhook is down still archives', async () => {
      const down = createRegistry({ sql: db.sql, root, alerts: createAlerts({ url: await deadUrl(), attempts: 2, backoffMs: 20 }) });
      await down.registerVersion(draft('echo_tool', 'k1', 1));
      const r = await down.archiveTool('echo_tool', 'retired by hand', { by });
      assert.deepEqual({ changed: r.changed, delivered: r.alert?.delivered }, { changed: true, delivered: false });
      assert.equal((await down.show('echo_tool')).status, 'archived');
      assert.equal((await audits('archive')).length, 1);
    });
  });
});
