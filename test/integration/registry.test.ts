import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { InvalidInputError } from '../../domain/errors.ts';
import { toolManifestSchema } from '../../domain/tool.ts';
import { harness } from '../../harness/index.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { fillValueKinds } from '../../services/catalog/search.ts';
import { IdempotencyConflictError, type RegisterInput, type RegisterStage, RegistryWriteError } from '../../services/catalog/store.ts';
import { type WatchEvent, watchRegistry } from '../../services/catalog/watcher.ts';
import { type ScratchDb, scratchDb, scratchDir } from './registry-db.ts';

const source = (n: number) => `export const manifest = {};\nexport async function run(input) {\n  return { n: ${n}, input };\n}\n`;

const draft = (name: string, key: string, n = 1, extra: Partial<RegisterInput> = {}): RegisterInput => ({
  name,
  source: source(n),
  tests: `import { run } from './tool.ts';\n// expects n = ${n}\n`,
  manifest: {
    description: `Echo tool ${name} for tests`,
    sideEffect: 'read',
    permissions: { network: ['api.example.com'], env: [] },
    inputSchema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
    outputSchema: { type: 'object' },
  },
  testCases: [{ name: 'echoes', input: { q: 'x' }, expected: { n } }],
  idempotencyKey: key,
  ...extra,
});

/** Every file (path → content) and directory under root: "the catalog as a person sees it". */
async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string): Promise<void> {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      const rel = path.relative(root, p);
      if (rel === '.tmp' && e.isDirectory() && (await fs.readdir(p)).length === 0) continue; // empty scratch space
      if (e.isDirectory()) {
        out[`${rel}/`] = '';
        await walk(p);
      } else out[rel] = await fs.readFile(p, 'utf8');
    }
  }
  await walk(root);
  return out;
}

async function rows(db: ScratchDb) {
  const [r] = await db.sql<{ tools: string; versions: string; cases: string; currents: string }[]>`
    select (select count(*) from tools) as tools, (select count(*) from tool_versions) as versions,
           (select count(*) from tool_test_cases) as cases,
           (select coalesce(string_agg(name || '=' || coalesce(current_version::text, '-'), ',' order by name), '') from tools) as currents`;
  return r;
}

describe('registry', () => {
  let db: ScratchDb;
  let dir: Awaited<ReturnType<typeof scratchDir>>;
  let root: string;
  let registry: Registry;
  let failAt: RegisterStage | null = null;

  before(async () => {
    db = await scratchDb('registry');
    dir = await scratchDir('registry');
  });

  beforeEach(async () => {
    // A fresh catalog per test: new root, empty tables.
    root = path.join(dir.dir, `tools-${Math.random().toString(36).slice(2, 8)}`);
    await db.sql`truncate tools, tool_versions, tool_test_cases, invocations, audit_log, tool_embeddings cascade`;
    failAt = null;
    registry = createRegistry({
      sql: db.sql,
      root,
      hooks: {
        onStage(stage) {
          if (stage === failAt) throw new Error(`injected failure at ${stage}`);
        },
      },
    });
  });

  after(async () => {
    await db?.drop();
    await dir?.remove();
  });

  it('registers a version as a folder, a pointer and rows', async () => {
    const r = await registry.registerVersion(draft('echo', 'wf-1:register'));
    assert.deepEqual({ version: r.version, created: r.created, current: r.current }, { version: 1, created: true, current: true });
    assert.equal(r.dir, path.join(root, 'echo', 'v1'));
    assert.deepEqual((await fs.readdir(r.dir)).sort(), ['manifest.json', 'tool.test.ts', 'tool.ts']);
    assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v1\n');
    const manifest = toolManifestSchema.parse(JSON.parse(await fs.readFile(path.join(r.dir, 'manifest.json'), 'utf8')));
    assert.equal(manifest.version, 1);
    assert.equal(manifest.createdBy, 'forge');
    const current = await registry.getCurrent('echo');
    assert.equal(current?.version, 1);
    assert.equal(current?.manifest.sourceSha256, manifest.sourceSha256);
    assert.equal((await rows(db))?.cases, '1');
  });

  it('same idempotency key twice → one version', async () => {
    const first = await registry.registerVersion(draft('echo', 'wf-1:register'));
    const second = await registry.registerVersion(draft('echo', 'wf-1:register'));
    assert.equal(first.created, true);
    assert.deepEqual({ version: second.version, created: second.created }, { version: 1, created: false });
    assert.deepEqual((await fs.readdir(path.join(root, 'echo'))).sort(), ['current', 'v1']);
    assert.equal((await rows(db))?.versions, '1');
  });

  it('same key concurrently → still one version', async () => {
    const results = await Promise.all([1, 2, 3].map(() => registry.registerVersion(draft('echo', 'wf-2:register'))));
    assert.deepEqual(
      results.map((r) => r.version),
      [1, 1, 1],
    );
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal((await rows(db))?.versions, '1');
  });

  it('different keys concurrently → consecutive versions, no gaps or clashes', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => registry.registerVersion(draft('echo', `wf-3:${n}`, n))));
    assert.deepEqual(results.map((r) => r.version).sort(), [1, 2, 3, 4]);
    assert.deepEqual((await fs.readdir(path.join(root, 'echo'))).sort(), ['current', 'v1', 'v2', 'v3', 'v4']);
    const current = await registry.getCurrent('echo');
    assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), `v${current?.version}\n`);
  });

  it('rejects invalid input with a typed error and writes nothing', async () => {
    await assert.rejects(registry.registerVersion(draft('Bad-Name', 'inv-1')), InvalidInputError);
    await assert.rejects(
      registry.registerVersion({
        ...draft('echo', 'inv-2'),
        manifest: { ...draft('echo', 'x').manifest, permissions: { network: ['not a host'], env: [] } },
      }),
      /permissions\.network/,
    );
    assert.deepEqual(await tree(root), {});
  });

  it('rejects a reused key with different content', async () => {
    await registry.registerVersion(draft('echo', 'wf-4:register', 1));
    await assert.rejects(registry.registerVersion(draft('echo', 'wf-4:register', 2)), IdempotencyConflictError);
  });

  it('v2 after v1, with history and a unified diff', async () => {
    await registry.registerVersion(draft('echo', 'k1', 1));
    const v2 = await registry.registerVersion(draft('echo', 'k2', 2));
    assert.equal(v2.version, 2);
    assert.equal((await registry.getCurrent('echo'))?.version, 2);
    const h = await registry.history('echo');
    assert.deepEqual(
      h.map((e) => [e.version, e.current, e.onDisk]),
      [
        [1, false, 'same'],
        [2, true, 'same'],
      ],
    );
    assert.equal(h[0]?.diff, '');
    assert.equal(
      h[1]?.diff,
      [
        '--- echo/v1/tool.ts',
        '+++ echo/v2/tool.ts',
        '@@ -1,4 +1,4 @@',
        ' export const manifest = {};',
        ' export async function run(input) {',
        '-  return { n: 1, input };',
        '+  return { n: 2, input };',
        ' }',
        '',
      ].join('\n'),
    );
    const list = await registry.list();
    assert.deepEqual(
      list.map((t) => [t.name, t.currentVersion, t.versions, t.status]),
      [['echo', 2, 2, 'active']],
    );
    const shown = await registry.show('echo');
    assert.deepEqual(shown.files, ['manifest.json', 'tool.test.ts', 'tool.ts']);
  });

  for (const stage of ['staged', 'placed', 'indexed', 'pointed'] as const) {
    it(`a failure at "${stage}" leaves the catalog as it was (first tool and next version)`, async () => {
      // A brand-new tool: nothing at all may remain.
      const emptyTree = await tree(root);
      failAt = stage;
      await assert.rejects(registry.registerVersion(draft('fresh', `fail-fresh-${stage}`)), RegistryWriteError);
      assert.deepEqual(await tree(root), emptyTree);
      assert.deepEqual(await rows(db), { tools: '0', versions: '0', cases: '0', currents: '' });

      // An existing tool: v1 stays current, no v2 anywhere.
      failAt = null;
      await registry.registerVersion(draft('echo', 'ok-v1', 1));
      const before = await tree(root);
      const beforeRows = await rows(db);
      failAt = stage;
      await assert.rejects(registry.registerVersion(draft('echo', `fail-v2-${stage}`, 2)), /unchanged/);
      assert.deepEqual(await tree(root), before);
      assert.deepEqual(await rows(db), beforeRows);
      assert.equal((await registry.getCurrent('echo'))?.version, 1);

      // The retry of the failed step (same key) then goes through, once.
      failAt = null;
      const retry = await registry.registerVersion(draft('echo', `fail-v2-${stage}`, 2));
      assert.deepEqual([retry.version, retry.created], [2, true]);
    });
  }

  it('a real filesystem failure (scratch space unusable) fails cleanly', async () => {
    await registry.registerVersion(draft('echo', 'fs-v1', 1));
    await fs.rm(path.join(root, '.tmp'), { recursive: true, force: true });
    await fs.writeFile(path.join(root, '.tmp'), 'not a directory'); // mkdir/mkdtemp under it fail
    const before = await tree(root);
    const beforeRows = await rows(db);
    await assert.rejects(registry.registerVersion(draft('echo', 'fs-v2', 2)), RegistryWriteError);
    assert.deepEqual(await tree(root), before);
    assert.deepEqual(await rows(db), beforeRows);
    await fs.rm(path.join(root, '.tmp'));
    assert.equal((await registry.registerVersion(draft('echo', 'fs-v2', 2))).version, 2);
  });

  it('sweeps debris of a crashed registration and heals on replay', async () => {
    await registry.registerVersion(draft('echo', 'c-v1', 1));
    // A crash after the rename and pointer swap, before the commit: v2 folder and pointer, no row.
    await fs.mkdir(path.join(root, 'echo', 'v2'));
    await fs.writeFile(path.join(root, 'echo', 'v2', 'tool.ts'), 'half');
    await fs.writeFile(path.join(root, 'echo', 'current'), 'v2\n');
    const rec = await registry.recover();
    assert.deepEqual(rec, { swept: ['echo/v2'], pointersFixed: ['echo'] });
    assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v1\n');
    assert.deepEqual((await fs.readdir(path.join(root, 'echo'))).sort(), ['current', 'v1']);
    assert.equal((await fs.readdir(path.join(root, '.trash'))).length, 1, 'debris kept for inspection');

    // Debris found by the next registration itself (no recover() in between).
    await fs.mkdir(path.join(root, 'echo', 'v2'));
    const v2 = await registry.registerVersion(draft('echo', 'c-v2', 2));
    assert.equal(v2.version, 2);
    assert.equal(await fs.readFile(path.join(v2.dir, 'tool.ts'), 'utf8'), source(2));

    // A replay of a committed registration whose folder vanished restores the folder.
    await fs.rm(v2.dir, { recursive: true });
    const again = await registry.registerVersion(draft('echo', 'c-v2', 2));
    assert.equal(again.created, false);
    assert.equal(await fs.readFile(path.join(v2.dir, 'tool.ts'), 'utf8'), source(2));
  });

  it('experimental versions wait for a promotion', async () => {
    await registry.registerVersion(draft('echo', 'e-v1', 1));
    const cand = await registry.registerVersion(draft('echo', 'e-v2', 2, { status: 'experimental', createdBy: 'rewrite' }));
    assert.deepEqual([cand.version, cand.current], [2, false]);
    assert.equal((await registry.getCurrent('echo'))?.version, 1);
    assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v1\n');
    await registry.setCurrent('echo', 2);
    assert.equal((await registry.getCurrent('echo'))?.version, 2);
    assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v2\n');
    await registry.setCurrent('echo', 1); // rollback
    assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v1\n');
  });

  it("keeps the kinds of value the current version's parameters take, posted for discovery, through promotions and rollbacks", async () => {
    const kinds = async () => {
      const [row] = await db.sql<{ kinds: string[]; posted: string[] }[]>`
        select value_kinds as kinds,
               array(select lexeme from lexeme_postings where tool = 'notes' and field = 4 order by lexeme) as posted
        from tools where name = 'notes'`;
      return row;
    };
    const takes = (properties: Record<string, unknown>) => ({
      manifest: { ...draft('notes', 'x').manifest, inputSchema: { type: 'object', properties } },
    });
    await registry.registerVersion(
      draft('notes', 'n-v1', 1, takes({ repo: { type: 'string', description: 'owner/name' }, tag: { type: 'string' } })),
    );
    assert.deepEqual(await kinds(), { kinds: ['repo', 'version'], posted: ['value:repo', 'value:version'] });
    await registry.registerVersion(
      draft('notes', 'n-v2', 2, { ...takes({ url: { type: 'string', format: 'uri' } }), status: 'experimental', createdBy: 'rewrite' }),
    );
    assert.deepEqual(await kinds(), { kinds: ['repo', 'version'], posted: ['value:repo', 'value:version'] }, 'a candidate is not current');
    await registry.setCurrent('notes', 2);
    assert.deepEqual(await kinds(), { kinds: ['host', 'url'], posted: ['value:host', 'value:url'] });
    await registry.setCurrent('notes', 1);
    assert.deepEqual(await kinds(), { kinds: ['repo', 'version'], posted: ['value:repo', 'value:version'] });

    // a catalog from before migration 082: the kinds are read once, from the current version
    await db.sql`update tools set value_kinds = null where name = 'notes'`;
    assert.deepEqual(await kinds(), { kinds: null, posted: [] });
    assert.equal(await fillValueKinds(db.sql), 1);
    assert.deepEqual(await kinds(), { kinds: ['repo', 'version'], posted: ['value:repo', 'value:version'] });
    assert.equal(await fillValueKinds(db.sql), 0, 'read once');
  });

  it('meters invocations once per key and derives stats and trust', async () => {
    await registry.registerVersion(draft('echo', 'm-v1'));
    const first = await registry.recordInvocation({
      idempotencyKey: 'wf-9:call-1',
      tool: 'echo',
      version: 1,
      input: { q: 'a' },
      output: { ok: 1 },
      latencyMs: 120,
      success: true,
    });
    const again = await registry.recordInvocation({
      idempotencyKey: 'wf-9:call-1',
      tool: 'echo',
      version: 1,
      input: { q: 'a' },
      output: { ok: 1 },
      latencyMs: 120,
      success: true,
    });
    assert.deepEqual([first.created, again.created, again.id], [true, false, first.id]);
    for (let i = 2; i <= 12; i++) {
      await registry.recordInvocation({
        idempotencyKey: `wf-9:call-${i}`,
        tool: 'echo',
        version: 1,
        operation: i % 2 ? 'list' : 'run',
        input: { i },
        latencyMs: 100,
        success: i !== 5,
        ...(i === 5 ? { error: 'HTTP 429' } : {}),
      });
    }
    const s = await registry.stats('echo');
    assert.equal(s.invocations, 12);
    assert.equal(s.successes, 11);
    assert.equal(s.level, 'standard');
    assert.deepEqual(s.successfulRunsByOperation, { list: 4, run: 7 });
    assert.equal(s.lastError, 'HTTP 429');
    assert.ok(Math.abs((s.avgLatencyMs ?? 0) - (120 + 11 * 100) / 12) < 1e-9);

    const a1 = await registry.recordAudit({
      idempotencyKey: 'wf-9:audit-1',
      kind: 'tool_call',
      tool: 'echo',
      version: 1,
      input: { q: 'a' },
      reasoning: 'the task asked for an echo',
      taskContext: { task: 't' },
    });
    const a2 = await registry.recordAudit({ idempotencyKey: 'wf-9:audit-1', kind: 'tool_call', tool: 'echo', version: 1 });
    assert.deepEqual([a1.created, a2.created, a2.id], [true, false, a1.id]);
  });

  it('quarantines and restores a tool', async () => {
    await registry.registerVersion(draft('echo', 'q-v1'));
    assert.deepEqual(await registry.setStatus('echo', 'quarantined'), { previous: 'active', status: 'quarantined' });
    assert.equal((await registry.getCurrent('echo'))?.status, 'quarantined');
    await assert.rejects(registry.setStatus('nope', 'active'), /not registered/);
  });

  it('with an embedder, meaning moves the order while the similarity stays the words’; a failing embedder leaves the words', async () => {
    // A toy embedder: hashed bag of words. Real ones come from an embedding API.
    const dims = 64;
    const embed = (t: string) => {
      const v = new Array<number>(dims).fill(0);
      for (const w of t.toLowerCase().match(/[a-z]+/g) ?? []) v[[...w].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % dims, 7)]! += 1;
      return v;
    };
    let failing = false;
    const dense = createRegistry({
      sql: db.sql,
      root,
      embedder: {
        model: 'toy-hash-64',
        embed: async (texts) => {
          if (failing) throw new Error('embedding API down');
          return texts.map(embed);
        },
      },
    });
    await dense.registerVersion(
      draft('weather_forecast', 'd-1', 1, { manifest: { ...draft('x', 'x').manifest, description: 'Weather forecast for a city' } }),
    );
    const [row] = await db.sql<{ model: string; n: number }[]>`select model, array_length(embedding, 1) as n from tool_embeddings`;
    assert.deepEqual(row, { model: 'toy-hash-64', n: dims });
    const [hit] = await dense.search('weather forecast for Bern');
    assert.ok(hit && hit.components.dense !== null && hit.components.dense > 0.5);
    assert.equal(hit.similarity, hit.components.lexical, 'the decision reads the words alone');
    const { weight, center } = harness.policy.retrieval.dense;
    assert.ok(Math.abs(hit.meaning! - weight * (hit.components.dense - center)) < 1e-9);

    failing = true;
    const v2 = await dense.registerVersion(draft('weather_forecast', 'd-2', 2));
    assert.equal(v2.created, true, 'registration does not depend on the embedding API');
    const [degraded] = await dense.search('weather forecast for Bern');
    assert.equal(degraded?.components.dense, null, 'search falls back to words');
    assert.equal(degraded?.meaning, undefined);
  });

  describe('watcher', () => {
    async function watchWith(
      verify: (dir: string) => Promise<{ ok: true } | { ok: false; reason: string }>,
      opts: { events?: boolean; rescanMs?: number } = {},
    ) {
      const events: WatchEvent[] = [];
      let notify: () => void = () => {};
      const watcher = await watchRegistry(registry, {
        verify,
        debounceMs: 80,
        ...opts,
        onChange: (e) => {
          events.push(e);
          notify();
        },
      });
      const next = (timeoutMs = 10_000) =>
        new Promise<WatchEvent>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no watcher event in ${timeoutMs} ms`)), timeoutMs);
          const check = () => {
            const e = events.shift();
            if (e) {
              clearTimeout(timer);
              resolve(e);
            } else notify = check;
          };
          check();
        });
      return { watcher, next };
    }

    it('turns a verified edit into the next version and keeps the old folder true', async () => {
      await registry.registerVersion(draft('echo', 'w-v1', 1));
      const verified: string[] = [];
      const { watcher, next } = await watchWith(async (d) => {
        verified.push(await fs.readFile(path.join(d, 'tool.ts'), 'utf8'));
        return { ok: true };
      });
      try {
        const edited = source(1).replace('n: 1', 'n: 1, edited: true');
        await fs.writeFile(path.join(root, 'echo', 'v1', 'tool.ts'), edited);
        const e = await next();
        assert.deepEqual(e, { kind: 'registered', name: 'echo', from: 1, version: 2 });
        assert.deepEqual(verified, [edited], 'verify saw the edit before it was used');
        const current = await registry.getCurrent('echo');
        assert.equal(current?.version, 2);
        assert.equal(current?.manifest.createdBy, 'human');
        assert.equal(await fs.readFile(path.join(root, 'echo', 'v2', 'tool.ts'), 'utf8'), edited);
        assert.equal(await fs.readFile(path.join(root, 'echo', 'v1', 'tool.ts'), 'utf8'), source(1), 'v1 holds what was registered');
        assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v2\n');
        const [audit] = await db.sql<{ kind: string }[]>`select kind from audit_log where tool = 'echo'`;
        assert.equal(audit?.kind, 'human_edit');

        // The watcher follows the pointer: the next edit lands on v2 and becomes v3.
        await watcher.idle();
        await fs.writeFile(path.join(root, 'echo', 'v2', 'tool.ts'), edited + '// again\n');
        assert.deepEqual(await next(), { kind: 'registered', name: 'echo', from: 2, version: 3 });
      } finally {
        await watcher.close();
      }
    });

    it('never lets a broken edit displace the last good version', async () => {
      await registry.registerVersion(draft('echo', 'b-v1', 1));
      await registry.registerVersion(draft('echo', 'b-v2', 2));
      const { watcher, next } = await watchWith(async () => ({ ok: false, reason: 'tests failed: expected n = 2' }));
      try {
        await fs.writeFile(path.join(root, 'echo', 'v2', 'tool.ts'), 'export async function run( {{{ syntax error');
        const e = await next();
        assert.equal(e.kind, 'rejected');
        if (e.kind !== 'rejected') return;
        assert.equal(e.version, 2);
        assert.match(e.reason, /tests failed/);
        assert.equal(
          await fs.readFile(path.join(e.savedTo, 'tool.ts'), 'utf8'),
          'export async function run( {{{ syntax error',
          'the edit is kept for the person',
        );
        assert.equal((await registry.getCurrent('echo'))?.version, 2);
        assert.equal(await fs.readFile(path.join(root, 'echo', 'current'), 'utf8'), 'v2\n');
        assert.equal(await fs.readFile(path.join(root, 'echo', 'v2', 'tool.ts'), 'utf8'), source(2), 'the current folder is good again');
        assert.equal((await rows(db))?.versions, '2');

        // A manifest that no longer parses is rejected before verification runs.
        const manifestPath = path.join(root, 'echo', 'v2', 'manifest.json');
        await watcher.idle();
        await fs.writeFile(manifestPath, '{ "description": ');
        const m = await next();
        assert.equal(m.kind, 'rejected');
        if (m.kind === 'rejected') assert.match(m.reason, /manifest/);
        assert.equal((await registry.getCurrent('echo'))?.version, 2);
      } finally {
        await watcher.close();
      }
    });

    it('without change events (a network filesystem), the rescan notices edits by their files and handles each once', async () => {
      await registry.registerVersion(draft('echo', 'p-v1', 1));
      const verified: string[] = [];
      const { watcher, next } = await watchWith(
        async (d) => {
          verified.push(await fs.readFile(path.join(d, 'tool.ts'), 'utf8'));
          return verified.length === 1 ? { ok: false, reason: 'tests failed' } : { ok: true };
        },
        { events: false, rescanMs: 150 },
      );
      try {
        await watcher.idle();
        await fs.appendFile(path.join(root, 'echo', 'v1', 'tool.ts'), 'export const broken = ;\n');
        const rejected = await next();
        assert.equal(rejected.kind, 'rejected');
        assert.equal(await fs.readFile(path.join(root, 'echo', 'v1', 'tool.ts'), 'utf8'), source(1), 'the registered code is back');

        await watcher.idle();
        await fs.appendFile(path.join(root, 'echo', 'v1', 'tool.ts'), '// reviewed\n');
        assert.deepEqual(await next(), { kind: 'registered', name: 'echo', from: 1, version: 2 });

        // Rescans go on: nothing unchanged is verified again, nothing registered twice.
        await new Promise((r) => setTimeout(r, 1_000));
        await watcher.idle();
        assert.equal(verified.length, 2);
        assert.equal((await rows(db))?.versions, '2');
      } finally {
        await watcher.close();
      }
    });

    it('a throwing verify counts as a failed verification', async () => {
      await registry.registerVersion(draft('echo', 't-v1', 1));
      const { watcher, next } = await watchWith(async () => {
        throw new Error('sandbox unavailable');
      });
      try {
        await fs.appendFile(path.join(root, 'echo', 'v1', 'tool.ts'), '// tweak\n');
        const e = await next();
        assert.equal(e.kind, 'rejected');
        if (e.kind === 'rejected') assert.match(e.reason, /sandbox unavailable/);
        assert.equal((await registry.getCurrent('echo'))?.version, 1);
      } finally {
        await watcher.close();
      }
    });
  });
});
