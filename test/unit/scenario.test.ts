import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { toActivityFailure } from '../../activities/failures.ts';
import { InvalidInputError } from '../../domain/errors.ts';
import {
  compilePattern,
  interpolate,
  matchRule,
  type RequestFacts,
  scenarioSchema,
  selectResponse,
} from '../../scripted-model/scenario.ts';
import { loadScenarioFile, startScriptedModel } from '../../scripted-model/server.ts';
import { createLlm } from '../../services/llm/client.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  system: 'You plan.',
  user: 'Task:\nfetch weather',
  first: 'Task:\nfetch weather',
  tools: ['submit_plan'],
  model: 'claude-sonnet-4-6',
  ...over,
});

const tempDirs: string[] = [];
after(() => Promise.all(tempDirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

async function tempScenario(content: unknown): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-scenario-'));
  tempDirs.push(dir);
  const file = path.join(dir, 'case.json');
  await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('scenario format', () => {
  it('accepts the bundled demo scenario', async () => {
    const s = await loadScenarioFile(path.join(root, 'scenarios', 'demo.json'));
    assert.equal(s.name, 'demo');
    assert.ok(s.rules.length >= 1);
  });

  it('rejects a response with two kinds, naming the file and the problem', async () => {
    const file = await tempScenario({ name: 'bad', rules: [{ responses: [{ text: 'a', error: { status: 500, message: 'x' } }] }] });
    await assert.rejects(loadScenarioFile(file), (err: unknown) => {
      assert.ok(err instanceof InvalidInputError);
      assert.match(err.message, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assert.match(err.message, /exactly one of text, tool_use, content, error; this one has text and error/);
      return true;
    });
  });

  it('rejects typos in field names and bad regexes', () => {
    const typo = scenarioSchema.safeParse({ name: 'x', rules: [{ respones: [{ text: 'a' }] }] });
    assert.equal(typo.success, false);
    assert.match(JSON.stringify(typo.error?.issues), /respones/);
    const regex = scenarioSchema.safeParse({ name: 'x', rules: [{ match: { user: '/(unclosed/' }, responses: [{ text: 'a' }] }] });
    assert.equal(regex.success, false);
    assert.match(JSON.stringify(regex.error?.issues), /not a valid regular expression/);
  });

  it('reports a file that is not JSON', async () => {
    const file = await tempScenario('{ "name": ');
    await assert.rejects(loadScenarioFile(file), /scenario file .*case\.json/);
  });
});

describe('matching', () => {
  it('treats "/.../flags" as a regex and anything else as a substring', () => {
    assert.deepEqual(compilePattern('/ab+c/i'), /ab+c/i);
    assert.equal(compilePattern('/v1/messages'), '/v1/messages', 'a path is not a regex');
    assert.equal(compilePattern('plain'), 'plain');
  });

  it('needs every given field to fit; tool, model and purpose compare whole values', () => {
    assert.ok(matchRule({ user: 'weather', tool: 'submit_plan' }, facts()));
    assert.equal(matchRule({ user: 'weather', tool: 'submit' }, facts()), undefined);
    assert.ok(matchRule({ tool: '/^submit_/' }, facts()));
    assert.ok(matchRule({ model: '/sonnet/' }, facts()));
    assert.equal(matchRule({ model: 'sonnet' }, facts()), undefined);
    assert.equal(matchRule({ purpose: 'plan_task' }, facts()), undefined, 'no purpose header, no match');
    assert.ok(matchRule({ purpose: 'plan_task' }, facts({ purpose: 'plan_task' })));
    assert.ok(matchRule({}, facts()), 'an empty match matches everything');
  });

  it('fills {{user.N}} from the capture groups of the user pattern', () => {
    const captures = matchRule({ user: '/Task:\\s*(.+)/' }, facts())!;
    assert.deepEqual(interpolate({ a: ['for {{user.1}}', 3], b: '{{system.1}}' }, captures), { a: ['for fetch weather', 3], b: '' });
  });

  it('hands out responses in order; the last repeats unless repeat is false', () => {
    const { rules } = scenarioSchema.parse({
      name: 'order',
      rules: [
        { match: { user: 'weather' }, repeat: false, responses: [{ text: 'first' }, { text: 'second' }] },
        { responses: [{ text: 'fallback' }] },
      ],
    });
    const used: number[] = [];
    const texts = Array.from({ length: 4 }, () => selectResponse(rules, used, facts())?.response.text);
    assert.deepEqual(texts, ['first', 'second', 'fallback', 'fallback']);
    const repeating = scenarioSchema.parse({ name: 'r', rules: [{ responses: [{ text: 'a' }, { text: 'b' }] }] }).rules;
    const u2: number[] = [];
    assert.deepEqual(
      Array.from({ length: 3 }, () => selectResponse(repeating, u2, facts())?.response.text),
      ['a', 'b', 'b'],
    );
  });
});

describe('scripted model server', () => {
  it('answers an unmatched request with a 400 the client turns into one line and its fix, the whole request kept in the details', async () => {
    const file = await tempScenario({ name: 'only-plans', rules: [{ match: { tool: 'submit_plan' }, responses: [{ text: 'x' }] }] });
    const server = await startScriptedModel({ scenarioFiles: [file] });
    try {
      const llm = createLlm({ baseURL: server.url, model: 'claude-sonnet-4-6' });
      const call = llm
        .structured({
          purpose: 'review',
          system: 's',
          prompt: 'Review this diff please',
          schema: z.object({ ok: z.boolean() }),
          toolName: 'review',
          toolDescription: 'r',
        })
        .catch((err: unknown) => Promise.reject(toActivityFailure(err)));
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.nonRetryable, true, 'a missing rule will not appear on retry');
        assert.equal(err.type, 'LlmNoScenarioRule');
        // What a person reads as the task's or forge's error: what is wrong and the two ways on, not the 1 kB body.
        assert.equal(
          err.message,
          'the scripted model has no scenario rule for this request (model call "review"); set ANTHROPIC_API_KEY for a real model, or add a rule to a scenario file (docs/scenarios.md)',
        );
        // The whole body, for whoever writes the rule: the files loaded, the request's text, its tools and purpose.
        const detail = String((err.details?.[0] as { detail?: unknown } | undefined)?.detail);
        assert.ok(detail.includes(file), `names ${file}: ${detail}`);
        assert.match(detail, /Review this diff please/);
        assert.match(detail, /tools: \[review\]/);
        assert.match(detail, /purpose: review/);
        return true;
      });
      assert.equal(server.unmatched, 1);
      assert.equal(server.requests[0]?.status, 400);
    } finally {
      await server.close();
    }
  });

  it("a 400 a scenario scripts is reported as the API's refusal, not as a missing rule", async () => {
    const server = await startScriptedModel({
      scenarios: [{ name: 'refuses', rules: [{ responses: [{ error: { status: 400, message: 'prompt is too long' } }] }] }],
    });
    try {
      const llm = createLlm({ baseURL: server.url, model: 'claude-sonnet-4-6' });
      const call = llm
        .structured({
          purpose: 'review',
          system: 's',
          prompt: 'p',
          schema: z.object({ ok: z.boolean() }),
          toolName: 'review',
          toolDescription: 'r',
        })
        .catch((err: unknown) => Promise.reject(toActivityFailure(err)));
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, 'LlmRequestInvalid');
        assert.match(err.message, /HTTP 400 invalid_request_error: prompt is too long/);
        return true;
      });
    } finally {
      await server.close();
    }
  });

  it('streams replies as server-sent events the SDK can assemble', async () => {
    const server = await startScriptedModel({
      scenarios: [
        {
          name: 'stream',
          rules: [
            {
              responses: [
                {
                  content: [
                    { type: 'text', text: 'Checking.' },
                    { type: 'tool_use', name: 'lookup', input: { q: 'paris', n: [1, 2] } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    try {
      const client = new Anthropic({ apiKey: 'test', baseURL: server.url, maxRetries: 0 });
      const stream = client.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
      const msg = await stream.finalMessage();
      assert.equal(msg.stop_reason, 'tool_use');
      assert.equal(msg.content[0]?.type === 'text' && msg.content[0].text, 'Checking.');
      const tool = msg.content[1];
      assert.ok(tool?.type === 'tool_use');
      assert.deepEqual(tool.input, { q: 'paris', n: [1, 2] });
      assert.ok(msg.usage.output_tokens > 0);
    } finally {
      await server.close();
    }
  });

  it('sends scripted errors in the Anthropic error shape with their headers', async () => {
    const server = await startScriptedModel({
      scenarios: [
        { name: 'err', rules: [{ responses: [{ error: { status: 529, message: 'Overloaded', headers: { 'x-extra': '1' } } }] }] },
      ],
    });
    try {
      const res = await fetch(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 529);
      assert.equal(res.headers.get('x-extra'), '1');
      assert.deepEqual(await res.json(), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    } finally {
      await server.close();
    }
  });

  it('waits delay_ms before answering', async () => {
    const server = await startScriptedModel({ scenarios: [{ name: 'slow', rules: [{ responses: [{ text: 'late', delay_ms: 150 }] }] }] });
    try {
      const client = new Anthropic({ apiKey: 'test', baseURL: server.url, maxRetries: 0 });
      const t0 = Date.now();
      const msg = await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
      assert.ok(Date.now() - t0 >= 140, 'took at least the delay');
      assert.equal(msg.content[0]?.type === 'text' && msg.content[0].text, 'late');
      assert.equal(msg.stop_reason, 'end_turn');
    } finally {
      await server.close();
    }
  });

  it('rejects a malformed scenario at start-up, before serving anything', async () => {
    await assert.rejects(
      startScriptedModel({ scenarios: [{ name: 'bad', rules: [{ responses: [] }] }] }),
      (err: unknown) => err instanceof InvalidInputError && /scenario "bad"/.test(err.message),
    );
  });
});
