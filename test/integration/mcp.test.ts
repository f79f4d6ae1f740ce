import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, ErrorCode, McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { freePort, sleep } from '../../infra/processes.ts';
import { createRegistry, type Registry } from '../../services/catalog/registry.ts';
import { harnessCli, harnessEnv } from '../helpers/cli.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { romanSource } from '../helpers/roman-tool.ts';

// Forge's own MCP server (issue 13, item 1) with the SDK's own client, on a real Forge (Temporal,
// Postgres, Docker; the scripted model forges count_words from scenarios/forge-word-count.json):
//   stdio (`forge mcp`, spawned as a client spawns it): the catalog and the meta-tools listed, a
//   read call through gate, sandbox, metering and audit (marked as MCP), a bad argument refused
//   with the tool's validation error, a forge mid-session announced by tools/list_changed and its
//   tool called without reconnecting, a write waiting for a person, a quarantine taking a tool away;
//   HTTP (`forge mcp --http`, as forge up runs it): no token or a wrong one refused with a clear
//   error, list and call with the token, a change announced to every session, and a notification
//   sent while the client's connection was down replayed when it reconnects (Last-Event-ID).

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const noteSource = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'save_note',
  description: 'Saves a note with a title and a body to the team notebook.',
  sideEffect: 'write',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ title: z.string().min(1), body: z.string() }),
  output: z.object({ saved: z.boolean(), title: z.string(), characters: z.number() }),
};

export async function run(input: { title: string; body: string }, _ctx: ToolContext) {
  return { saved: true, title: input.title, characters: input.body.length };
}
`;

const objectSchema = (props: Record<string, Record<string, unknown>>) => ({
  type: 'object',
  properties: props,
  required: Object.keys(props),
  additionalProperties: false,
});

const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** A client that counts the tools/list_changed notifications it receives. */
function listeningClient(name: string) {
  const client = new Client({ name, version: '1.0.0' });
  const changes: number[] = [];
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    changes.push(Date.now());
  });
  return { client, changes };
}

/** A TCP relay between the HTTP client and the server whose live connections a test can cut: a network drop. */
async function relay(targetPort: number) {
  const sockets = new Set<net.Socket>();
  const seen: string[] = [];
  const server = net.createServer((down) => {
    const up = net.connect(targetPort, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    down.on('data', (d: Buffer) => seen.push(d.toString('latin1')));
    down.pipe(up);
    up.pipe(down);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    /** the request heads the client sent through the relay */
    seen,
    cut() {
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('forge mcp: the live catalog over MCP (stdio and Streamable HTTP)', () => {
  let h: Harness;
  let registry: Registry;
  let env: NodeJS.ProcessEnv;
  const token = `test-${randomBytes(16).toString('hex')}`;
  const forge = (...args: string[]) => harnessCli(h, { user: 'tester', timeoutMs: 120_000 })(...args);

  let stdio: ReturnType<typeof listeningClient>;
  let stdioErr = '';
  let httpServer: ChildProcess;
  let httpPort: number;
  let httpLog = '';

  before(async () => {
    h = await startHarness({ scenarioFiles: ['scenarios/forge-word-count.json', 'scenarios/demo.json'] });
    registry = createRegistry({ sql: h.db.sql, root: path.join(h.home, 'tools') });
    await registry.registerVersion({
      name: 'roman_numeral',
      source: romanSource,
      tests: '',
      manifest: {
        description: 'Writes a whole number in roman numerals.',
        sideEffect: 'read',
        destructive: false,
        permissions: { network: [], env: [] },
        inputSchema: objectSchema({ number: { type: 'integer', description: 'the number to write, 1 to 3999' } }),
        outputSchema: objectSchema({ roman: { type: 'string' } }),
      },
      createdBy: 'human',
      idempotencyKey: 'mcp-test:roman_numeral',
    });
    await registry.registerVersion({
      name: 'save_note',
      source: noteSource,
      tests: '',
      manifest: {
        description: 'Saves a note with a title and a body to the team notebook.',
        sideEffect: 'write',
        destructive: false,
        permissions: { network: [], env: [] },
        inputSchema: objectSchema({ title: { type: 'string' }, body: { type: 'string' } }),
        outputSchema: objectSchema({ saved: { type: 'boolean' }, title: { type: 'string' }, characters: { type: 'number' } }),
      },
      createdBy: 'human',
      idempotencyKey: 'mcp-test:save_note',
    });

    env = harnessEnv(h, { FORGE_MCP_TOKEN: token });

    // stdio: the server as an MCP client spawns it.
    stdio = listeningClient('forge-mcp-test-stdio');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['bin/forge.mjs', 'mcp'],
      cwd: root,
      env: env as Record<string, string>,
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d: Buffer) => (stdioErr += d));
    await stdio.client.connect(transport);

    // HTTP: the endpoint as forge up runs it, on a free port.
    httpPort = await freePort();
    httpServer = spawn(process.execPath, ['bin/forge.mjs', 'mcp', '--http', '--port', String(httpPort)], {
      cwd: root,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    httpServer.stderr?.on('data', (d: Buffer) => (httpLog += d));
    await waitFor(
      'the MCP HTTP endpoint',
      async () => ((await fetch(`http://127.0.0.1:${httpPort}/health`).catch(() => undefined))?.ok ? true : undefined),
      60_000,
    );
  });

  after(async () => {
    await stdio?.client.close().catch(() => {});
    if (httpServer && httpServer.exitCode === null) {
      const exited = new Promise((r) => httpServer.once('exit', r));
      httpServer.kill('SIGTERM');
      await exited;
    }
    await h?.close();
  });

  const call = (client: Client, name: string, args: Record<string, unknown>, timeout = 120_000) =>
    client.callTool({ name, arguments: args }, undefined, { timeout }) as Promise<CallToolResult>;

  it('lists every active catalog tool with its JSON Schemas, and the meta-tools', async () => {
    const { tools } = await stdio.client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['call_tool', 'forge_tool', 'get_result', 'roman_numeral', 'run_task', 'save_note', 'search_tools'], stdioErr);
    const roman = tools.find((t) => t.name === 'roman_numeral')!;
    assert.deepEqual(roman.inputSchema, objectSchema({ number: { type: 'integer', description: 'the number to write, 1 to 3999' } }));
    assert.deepEqual(roman.outputSchema, objectSchema({ roman: { type: 'string' } }));
    assert.match(roman.description ?? '', /^Writes a whole number in roman numerals\.\n\n\(Forge tool v1: reads only; works offline;/);
    assert.equal(roman.annotations?.readOnlyHint, true);
    const note = tools.find((t) => t.name === 'save_note')!;
    assert.equal(note.annotations?.readOnlyHint, false);
    assert.match(note.description ?? '', /each call waits for a person's approval \(forge approve <id>\)/);
  });

  it('calls a read tool through the gate, the sandbox, metering and the audit log, marked as coming from MCP', async () => {
    const res = await call(stdio.client, 'roman_numeral', { number: 1987 });
    assert.equal(res.isError, undefined, text(res));
    assert.deepEqual(res.structuredContent, { roman: 'MCMLXXXVII' });
    assert.equal(text(res), '{"roman":"MCMLXXXVII"}');
    const workflowId = String(res._meta?.['forge/workflowId']);
    assert.match(workflowId, /^call-roman_numeral-\d{14}-[0-9a-f]{6}$/);

    const [audit] = await h.db.sql<{ kind: string; reasoning: string; task_context: Record<string, unknown>; workflow_id: string }[]>`
      select kind, reasoning, task_context, workflow_id from audit_log where tool = 'roman_numeral' order by id`;
    assert.deepEqual(
      { kind: audit?.kind, reasoning: audit?.reasoning, source: audit?.task_context.source, client: audit?.task_context.client },
      { kind: 'tool_call', reasoning: 'mcp: forge-mcp-test-stdio', source: 'mcp', client: 'forge-mcp-test-stdio' },
    );
    assert.equal(audit?.workflow_id, workflowId);
    const metered = await h.db.sql<{ success: boolean; idempotency_key: string }[]>`
      select success, idempotency_key from invocations where tool = 'roman_numeral'`;
    assert.deepEqual(
      metered.map((m) => [m.success, m.idempotency_key]),
      [[true, `${workflowId}:call:1`]],
    );
  });

  it("a bad argument gets the tool's validation error, audited as refused and never metered", async () => {
    const res = await call(stdio.client, 'roman_numeral', { number: 'twelve' });
    assert.equal(res.isError, true);
    assert.match(text(res), /^invalid input for roman_numeral: number: .+\. Call roman_numeral again with input that fits its schema\.$/);
    const extra = await call(stdio.client, 'roman_numeral', { number: 12, base: 10 });
    assert.match(text(extra), /not a parameter: base \(the parameters are: number\)/);
    const [counts] = await h.db.sql<{ refused: number; metered: number }[]>`
      select (select count(*)::int from audit_log where tool = 'roman_numeral' and kind = 'refused_call') as refused,
             (select count(*)::int from invocations where tool = 'roman_numeral') as metered`;
    assert.deepEqual({ ...counts }, { refused: 2, metered: 1 });
  });

  it('a tool name the catalog does not offer is refused at once, naming search_tools: no workflow, nothing metered or audited', async () => {
    await assert.rejects(stdio.client.callTool({ name: 'roman_numerals', arguments: { number: 4 } }), (err: unknown) => {
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, ErrorCode.InvalidParams);
      // The client's McpError puts the code in front once; the server's message does not carry it again.
      assert.match(
        err.message,
        /^MCP error -32602: no tool named "roman_numerals" in Forge's catalog: search_tools finds the tool for a need/,
      );
      return true;
    });
    const viaCallTool = await call(stdio.client, 'call_tool', { name: 'roman_numerals', arguments: { number: 4 } });
    assert.equal(viaCallTool.isError, true);
    assert.match(text(viaCallTool), /^no tool named "roman_numerals" in Forge's catalog \(fix: search_tools finds the tool for a need/);

    // A started call cycle is tagged with its tool: visibility lists it within moments.
    await sleep(1500);
    const started = [];
    for await (const w of h.client.workflow.list({ query: `ForgeToolName = 'roman_numerals'` })) started.push(w.workflowId);
    assert.deepEqual(started, [], 'no tool call cycle was started');
    const [left] = await h.db.sql<{ audited: number; metered: number; approvals: number }[]>`
      select (select count(*)::int from audit_log where tool = 'roman_numerals') as audited,
             (select count(*)::int from invocations where tool = 'roman_numerals') as metered,
             (select count(*)::int from approvals where tool = 'roman_numerals') as approvals`;
    assert.deepEqual({ ...left }, { audited: 0, metered: 0, approvals: 0 });
  });

  it('search_tools answers with scores and discovery’s decision', async () => {
    const res = await call(stdio.client, 'search_tools', { query: 'write a number in roman numerals' });
    assert.equal(res.isError, undefined, text(res));
    const hits = (res.structuredContent as { hits: { name: string; score: number; similarity: number }[] }).hits;
    assert.equal(hits[0]?.name, 'roman_numeral');
    assert.ok(hits[0]!.score > 0 && hits[0]!.similarity > 0, JSON.stringify(hits[0]));
    assert.match(
      text(res),
      /^Tools for "write a number in roman numerals" \(best first\):\n- roman_numeral v1 — score \d\.\d\d \(similarity/,
    );
  });

  it('a forge during the session: tools/list_changed, then the new tool is called without reconnecting', async () => {
    const before = stdio.changes.length;
    const res = await call(stdio.client, 'forge_tool', { description: 'count the words in a text', waitSeconds: 240 }, 300_000);
    assert.equal(res.isError, undefined, text(res));
    assert.match(text(res), /^Forged count_words v1, verified in Forge's sandbox and registered\./);
    assert.match(String((res.structuredContent as { workflowId: string }).workflowId), /^forge-/);
    await waitFor('tools/list_changed on stdio', () => (stdio.changes.length > before ? true : undefined));
    const { tools } = await stdio.client.listTools();
    assert.ok(
      tools.some((t) => t.name === 'count_words'),
      tools.map((t) => t.name).join(', '),
    );
    const counted = await call(stdio.client, 'count_words', { text: 'the quick brown fox' });
    assert.equal(counted.isError, undefined, text(counted));
    assert.equal((counted.structuredContent as { words: number }).words, 4);
  });

  it("run_task gives Forge's own agent a whole task and answers with its answer and the calls behind it", async () => {
    const res = await call(
      stdio.client,
      'run_task',
      { task: 'how many words are in "a rose is a rose is a rose"?', waitSeconds: 90, maxTokens: 200_000 },
      150_000,
    );
    assert.equal(res.isError, undefined, text(res));
    assert.match(text(res), /^There are 8 words, as counted by count_words\.\n\nCalls:\n- count_words v1: succeeded$/);
    const out = res.structuredContent as { workflowId: string; status: string; calls: { tool: string; output: unknown }[] };
    assert.match(out.workflowId, /^task-/);
    assert.equal(out.status, 'completed');
    assert.deepEqual(
      out.calls.map((c) => [c.tool, (c.output as { words: number }).words]),
      [['count_words', 8]],
    );
    // The bounds forge run takes, maxTokens too, reach the task's workflow.
    const result = (await h.client.workflow.getHandle(out.workflowId).result()) as { limits: { maxTokens: number } };
    assert.equal(result.limits.maxTokens, 200_000);
  });

  it("a meta-tool's input under a key it does not take names the parameters it does, and call_tool where the tool's input goes", async () => {
    const misplaced = await call(stdio.client, 'call_tool', { name: 'roman_numeral', input: { number: 4 } });
    assert.equal(misplaced.isError, true);
    assert.equal(
      text(misplaced),
      'invalid call_tool input: not a parameter: input (the parameters are: name, arguments); the called tool\'s input goes in "arguments": {"name": "<tool>", "arguments": {…}}. Call it again with input that fits its schema.',
    );
    assert.doesNotMatch(text(misplaced), /Unrecognized key/);
    const bounds = await call(stdio.client, 'run_task', { task: 'how many words are in "a b"?', maxTokens: 5, turns: 2 });
    assert.equal(bounds.isError, true);
    assert.match(
      text(bounds),
      /^invalid run_task input: maxTokens: .*>=1000; not a parameter: turns \(the parameters are: task, sessionId, maxTurns, maxToolCalls, maxTokens, waitSeconds\)\./,
    );
  });

  it("a write waits for a person: the call answers at once with the approval's id, and runs once approved", async () => {
    const res = await call(stdio.client, 'save_note', { title: 'groceries', body: 'milk and eggs' });
    assert.equal(res.isError, true, 'no output yet: not the tool result');
    const workflowId = String(res._meta?.['forge/workflowId']);
    const approvalId = `${workflowId}.write.1`;
    assert.match(
      text(res),
      new RegExp(
        `^Not done yet: waiting for approval ${approvalId.replace(/\./g, '\\.')} \\(write\\): save_note v1 with .*called over mcp by forge-mcp-test-stdio`,
      ),
    );
    assert.match(text(res), new RegExp(`forge approve ${approvalId.replace(/\./g, '\\.')} `));
    assert.match(text(res), /Do not call it again: the call goes on by itself; fetch the outcome with get_result/);
    assert.equal((await h.db.sql`select 1 from invocations where tool = 'save_note'`).length, 0, 'nothing ran before the approval');

    const pending = await call(stdio.client, 'get_result', { id: workflowId, waitSeconds: 0 });
    assert.equal(pending.isError, undefined);
    assert.equal((pending.structuredContent as { state: string }).state, 'awaiting-approval');

    const approved = await forge('approve', approvalId);
    assert.equal(approved.code, 0, approved.stderr);
    const done = await call(stdio.client, 'get_result', { id: workflowId, waitSeconds: 60 });
    assert.equal(done.isError, undefined, text(done));
    assert.deepEqual(done.structuredContent, { saved: true, title: 'groceries', characters: 13 });
    const [audit] = await h.db.sql<{ reasoning: string; task_context: Record<string, unknown> }[]>`
      select reasoning, task_context from audit_log where tool = 'save_note'`;
    assert.equal(audit?.reasoning, 'mcp: forge-mcp-test-stdio');
    assert.equal(audit?.task_context.source, 'mcp');
  });

  it('HTTP: no token, or a wrong one, is refused with a clear error', async () => {
    const url = `http://127.0.0.1:${httpPort}/mcp`;
    const init = {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    };
    const none = await fetch(url, init);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /);
    const body = (await none.json()) as { error: { message: string } };
    assert.match(
      body.error.message,
      /^missing bearer token: Forge's MCP endpoint needs the header "Authorization: Bearer <token>", with FORGE_MCP_TOKEN/,
    );
    const wrong = await fetch(url, { ...init, headers: { ...init.headers, authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401);
    assert.match(((await wrong.json()) as { error: { message: string } }).error.message, /^wrong bearer token/);

    const { client } = listeningClient('forge-mcp-test-no-token');
    await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(url))), /401|missing bearer token/);
  });

  it('HTTP: lists and calls with the token; a catalog change reaches every session, and one sent while a client was cut off is replayed on reconnect', async () => {
    const proxy = await relay(httpPort);
    const http = listeningClient('forge-mcp-test-http');
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${proxy.port}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
      // Reconnect after 3 s: long enough for a change to be announced while this client is away.
      reconnectionOptions: { initialReconnectionDelay: 3000, maxReconnectionDelay: 3000, reconnectionDelayGrowFactor: 1, maxRetries: 10 },
    });
    try {
      await http.client.connect(transport);
      const { tools } = await http.client.listTools();
      assert.ok(
        tools.some((t) => t.name === 'count_words') && tools.some((t) => t.name === 'roman_numeral'),
        tools.map((t) => t.name).join(', '),
      );
      const res = await call(http.client, 'call_tool', { name: 'roman_numeral', arguments: { number: 2024 } });
      assert.equal(res.isError, undefined, text(res));
      assert.deepEqual(res.structuredContent, { roman: 'MMXXIV' });
      // The listening stream opens with a tools/list_changed: from then on the client holds an event id.
      await waitFor('the listening stream', () => (http.changes.length > 0 ? true : undefined), 10_000);

      // A quarantine removes the tool from every session's list.
      const seen = { stdio: stdio.changes.length, http: http.changes.length };
      await registry.setStatus('roman_numeral', 'quarantined');
      await waitFor('tools/list_changed on both transports', () =>
        stdio.changes.length > seen.stdio && http.changes.length > seen.http ? true : undefined,
      );
      for (const client of [stdio.client, http.client]) {
        const names = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(!names.includes('roman_numeral'), names.join(', '));
      }
      // Called anyway, it is refused before any cycle starts, as an unknown name is: why, and what a person can do.
      const quarantinedAt = new Date().toISOString();
      const counted = () => h.db.sql<{ audited: number; metered: number }[]>`
        select (select count(*)::int from audit_log where tool = 'roman_numeral') as audited,
               (select count(*)::int from invocations where tool = 'roman_numeral') as metered`;
      const [before] = await counted();
      await assert.rejects(stdio.client.callTool({ name: 'roman_numeral', arguments: { number: 7 } }), (err: unknown) => {
        assert.ok(err instanceof McpError, String(err));
        assert.equal(err.code, ErrorCode.InvalidParams);
        assert.match(
          err.message,
          /^MCP error -32602: roman_numeral is quarantined in Forge's catalog: it failed too many of its recent calls/,
        );
        assert.match(err.message, /forge improve roman_numeral, or release it at once with forge tools rollback roman_numeral/);
        return true;
      });
      const viaCallTool = await call(http.client, 'call_tool', { name: 'roman_numeral', arguments: { number: 7 } });
      assert.equal(viaCallTool.isError, true);
      assert.match(
        text(viaCallTool),
        /^roman_numeral is quarantined in Forge's catalog: .+ \(fix: .*forge tools rollback roman_numeral .*search_tools finds the tool for a need/,
      );
      await sleep(1500);
      const cycles = [];
      for await (const w of h.client.workflow.list({ query: `ForgeToolName = 'roman_numeral' AND StartTime > '${quarantinedAt}'` }))
        cycles.push(w.workflowId);
      assert.deepEqual(cycles, [], 'no tool call cycle was started');
      assert.deepEqual((await counted())[0], before, 'nothing audited or metered');

      // The network drops; the tool comes back while the client is away; the client reconnects
      // with Last-Event-ID and the event store replays the notification it missed.
      const missed = http.changes.length;
      proxy.seen.length = 0;
      proxy.cut();
      await registry.setStatus('roman_numeral', 'active');
      await waitFor('the missed tools/list_changed, replayed', () => (http.changes.length > missed ? true : undefined), 20_000);
      assert.ok(
        proxy.seen.some((chunk) => /^GET \/mcp/.test(chunk) && /\r\nlast-event-id: /i.test(chunk)),
        'the client resumed its stream with Last-Event-ID',
      );
      const names = (await http.client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('roman_numeral'), names.join(', '));
    } finally {
      await http.client.close().catch(() => {});
      await proxy.close();
    }
    assert.equal(httpServer.exitCode, null, httpLog);
  });

  it("search_tools counts the current version's calls, as forge tools ls does: a new version starts its own record", async () => {
    // v1 of roman_numeral has earned calls by now; one more that failed, then a rewrite as v2.
    const v1 = await registry.getCurrent('roman_numeral');
    assert.equal(v1?.version, 1);
    await registry.recordInvocation({
      idempotencyKey: 'mcp-test:roman_numeral:v1-failure',
      tool: 'roman_numeral',
      version: 1,
      input: { number: 0 },
      latencyMs: 5,
      success: false,
      error: 'out of range',
    });
    const v2 = await registry.registerVersion({
      name: 'roman_numeral',
      source: romanSource,
      tests: '',
      manifest: { ...v1!.manifest, description: 'Writes a whole number (1 to 3999) in roman numerals.' },
      createdBy: 'human',
      idempotencyKey: 'mcp-test:roman_numeral:v2',
    });
    assert.equal((await registry.getCurrent('roman_numeral'))?.version, 2, JSON.stringify(v2));
    const counted = await call(stdio.client, 'roman_numeral', { number: 9 });
    assert.deepEqual(counted.structuredContent, { roman: 'IX' }, text(counted));

    const res = await call(stdio.client, 'search_tools', { query: 'write a number in roman numerals' });
    const hit = (res.structuredContent as { hits: { name: string; version: number; invocations: number; successes: number }[] }).hits.find(
      (x) => x.name === 'roman_numeral',
    );
    assert.deepEqual(
      { name: hit?.name, version: hit?.version, invocations: hit?.invocations, successes: hit?.successes },
      { name: 'roman_numeral', version: 2, invocations: 1, successes: 1 },
      "v2's one call, not v1's record",
    );
    assert.match(text(res), /- roman_numeral v2 — score \d\.\d\d \(similarity \d\.\d\d; \w+, 1\/1 calls of v2 succeeded;/);

    const listed = (await forge('tools', 'ls', '--json')).json().tools as {
      name: string;
      stats: { invocations: number; successes: number };
    }[];
    const row = listed.find((t) => t.name === 'roman_numeral');
    assert.deepEqual(
      [row?.stats.invocations, row?.stats.successes],
      [hit?.invocations, hit?.successes],
      'the same counts as forge tools ls',
    );
  });
});
