import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { z } from 'zod';
import { llmActivities } from '../../activities/llm.ts';
import { activityScope } from '../../activities/scope.ts';
import { LlmOutputError } from '../../domain/errors.ts';
import { estimateCost } from '../../domain/pricing.ts';
import { harness } from '../../harness/index.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type RecordedRequest, type ScriptedModel, startScriptedModel } from '../../scripted-model/server.ts';
import { createLlm, type LlmUsage, toolInputSchema } from '../../services/llm/client.ts';
import { failureOf } from '../helpers/failures.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = 'claude-sonnet-4-6';

const answerSchema = z.object({ city: z.string().min(1), celsius: z.number() });

/** Starts a scripted model with one scenario and returns it with an Llm pointed at it. */
async function setup(rules: ScenarioInput['rules'], model = MODEL) {
  const usages: LlmUsage[] = [];
  const server = await startScriptedModel({ scenarios: [{ name: 'llm-test', rules }] });
  const llm = createLlm({ baseURL: server.url, model, recordUsage: async (u) => void usages.push(u), scope: activityScope });
  return { server, llm, usages };
}

const weather = (llm: ReturnType<typeof createLlm>, purpose = 'weather') =>
  llm.structured({
    purpose,
    system: 'You report the weather. Always answer with the report tool.',
    prompt: 'Weather in Paris?',
    schema: answerSchema,
    toolName: 'report',
    toolDescription: 'Report the weather',
  });

type Body = {
  system: { type: string; text: string; cache_control?: { type: string } }[];
  messages: { role: string; content: unknown }[];
  tools: { name: string; input_schema: unknown }[];
  tool_choice: unknown;
};
const bodyOf = (r: RecordedRequest | undefined) => r?.body as Body;

describe('structured output through the real SDK', () => {
  it('returns the validated tool input of a valid reply', async () => {
    const { server, llm } = await setup([
      { match: { tool: 'report' }, responses: [{ tool_use: { name: 'report', input: { city: 'Paris', celsius: 14 } } }] },
    ]);
    try {
      const { value } = await weather(llm);
      assert.deepEqual(value, { city: 'Paris', celsius: 14 });
      const body = bodyOf(server.requests[0]);
      assert.deepEqual(body.tool_choice, { type: 'tool', name: 'report' }, 'the tool call is forced');
      assert.deepEqual(body.tools[0]?.input_schema, toolInputSchema(answerSchema), 'the schema is sent as JSON Schema');
      assert.equal(server.requests[0]?.headers['x-forge-purpose'], 'weather');
    } finally {
      await server.close();
    }
  });

  it('retries once with the validation error and accepts the corrected reply', async () => {
    const { server, llm, usages } = await setup([
      {
        match: { tool: 'report' },
        responses: [
          { tool_use: { name: 'report', input: { city: 'Paris', celsius: 'warm' }, id: 'toolu_first' } },
          { tool_use: { name: 'report', input: { city: 'Paris', celsius: 15 } } },
        ],
      },
    ]);
    try {
      const { value, usage } = await weather(llm);
      assert.deepEqual(value, { city: 'Paris', celsius: 15 });
      assert.equal(server.requests.length, 2);
      const second = bodyOf(server.requests[1]);
      // The retry replays the bad call and answers it with an error tool_result naming the problem.
      assert.equal(second.messages.length, 3);
      assert.deepEqual(second.messages[1], {
        role: 'assistant',
        content: [{ type: 'tool_use', id: 'toolu_first', name: 'report', input: { city: 'Paris', celsius: 'warm' } }],
      });
      const [result] = (second.messages[2]?.content ?? []) as { type: string; tool_use_id: string; is_error: boolean; content: string }[];
      assert.equal(result?.type, 'tool_result');
      assert.equal(result?.tool_use_id, 'toolu_first');
      assert.equal(result?.is_error, true);
      assert.match(result?.content ?? '', /celsius/);
      assert.match(result?.content ?? '', /expected number/);
      assert.equal(usages.length, 2, 'both billed replies are metered');
      assert.equal(usage.outputTokens, usages[0]!.outputTokens + usages[1]!.outputTokens, 'the returned usage sums both attempts');
    } finally {
      await server.close();
    }
  });

  it('asks again with a plain message when the reply called no tool', async () => {
    const { server, llm } = await setup([
      {
        match: { tool: 'report' },
        responses: [{ text: 'It is sunny.' }, { tool_use: { name: 'report', input: { city: 'Paris', celsius: 20 } } }],
      },
    ]);
    try {
      const { value } = await weather(llm);
      assert.equal(value.celsius, 20);
      const last = bodyOf(server.requests[1]).messages.at(-1);
      assert.match(JSON.stringify(last?.content), /did not call report/);
    } finally {
      await server.close();
    }
  });

  it('fails with a non-retryable LlmOutputInvalid after two invalid replies', async () => {
    const { server, llm, usages } = await setup([
      { match: { tool: 'report' }, responses: [{ tool_use: { name: 'report', input: { town: 'Paris' } } }] },
    ]);
    try {
      const f = await failureOf(weather(llm));
      assert.equal(f.type, 'LlmOutputInvalid');
      assert.equal(f.nonRetryable, true);
      assert.ok(f.cause instanceof LlmOutputError);
      assert.match(f.message, /weather/, 'names the purpose');
      assert.match(f.message, /city/, 'names the field that is wrong');
      assert.equal((f.cause as LlmOutputError).fix, 'check the prompt or the scenario file that produced this reply');
      assert.equal(server.requests.length, 2, 'exactly one retry');
      assert.equal(usages.length, 2, 'failed validation attempts are metered too');
    } finally {
      await server.close();
    }
  });
});

describe('usage and cost', () => {
  it('computes cost from the reply usage and records every call', async () => {
    const usage = { input_tokens: 1000, output_tokens: 500, cache_creation_input_tokens: 2000, cache_read_input_tokens: 0 };
    const { server, llm, usages } = await setup([
      { responses: [{ tool_use: { name: 'report', input: { city: 'Oslo', celsius: -3 } }, usage }] },
    ]);
    try {
      const result = await weather(llm, 'cost');
      // sonnet: $3/M input, $15/M output, $3.75/M cache write
      const expected = (1000 * 3 + 500 * 15 + 2000 * 3.75) / 1e6;
      assert.equal(result.usage.costUsd, expected);
      assert.deepEqual(usages, [
        {
          purpose: 'cost',
          model: MODEL,
          inputTokens: 1000,
          outputTokens: 500,
          cacheCreationTokens: 2000,
          cacheReadTokens: 0,
          costUsd: expected,
          pricedAs: 'sonnet',
          workflowId: undefined,
          activityId: undefined,
        },
      ]);
    } finally {
      await server.close();
    }
  });

  it('prices an unknown model as sonnet and says so', async () => {
    const { server, llm, usages } = await setup(
      [{ responses: [{ tool_use: { name: 'report', input: { city: 'Rome', celsius: 22 } } }] }],
      'claude-fable-5-2',
    );
    try {
      await weather(llm);
      assert.equal(usages[0]?.pricedAs, 'sonnet');
      assert.match(usages[0]?.priceNote ?? '', /unknown model "claude-fable-5-2"/);
    } finally {
      await server.close();
    }
  });

  it('prices by family, with the older Opus generation at its own price', () => {
    const t = { inputTokens: 1_000_000, outputTokens: 0, cacheCreationTokens: 0, cacheReadTokens: 1_000_000 };
    assert.deepEqual(estimateCost('claude-opus-4-5', t), { costUsd: 5.5, pricedAs: 'opus' });
    assert.deepEqual(estimateCost('claude-opus-4-1', t), { costUsd: 16.5, pricedAs: 'opus' });
    assert.deepEqual(estimateCost('claude-haiku-4-5', t), { costUsd: 1.1, pricedAs: 'haiku' });
    assert.deepEqual(estimateCost('claude-sonnet-4-6', t), { costUsd: 3.3, pricedAs: 'sonnet' });
  });

  it('a failing recordUsage does not fail the (already paid for) call', async () => {
    const server = await startScriptedModel({
      scenarios: [{ name: 'r', rules: [{ responses: [{ tool_use: { name: 'report', input: { city: 'Rome', celsius: 22 } } }] }] }],
    });
    try {
      const llm = createLlm({ baseURL: server.url, model: MODEL, recordUsage: async () => Promise.reject(new Error('db down')) });
      const { value } = await weather(llm);
      assert.equal(value.city, 'Rome');
    } finally {
      await server.close();
    }
  });

  it('takes workflowId and activityId from the Temporal activity context', async () => {
    const { server, llm, usages } = await setup([{ responses: [{ tool_use: { name: 'report', input: { city: 'Lima', celsius: 18 } } }] }]);
    try {
      // The worker normally provides this context; a minimal stand-in is enough for what llm.ts reads.
      const ctx = {
        info: { activityId: '7', workflowExecution: { workflowId: 'task-42', runId: 'r1' } },
        cancellationSignal: new AbortController().signal,
      } as unknown as Context;
      await asyncLocalStorage.run(ctx, () => weather(llm));
      assert.equal(usages[0]?.workflowId, 'task-42');
      assert.equal(usages[0]?.activityId, '7');
    } finally {
      await server.close();
    }
  });
});

describe('prompt caching', () => {
  it('sends the static system prompt with cache_control and the dynamic part as the user message', async () => {
    const { server, llm, usages } = await setup([{ responses: [{ tool_use: { name: 'report', input: { city: 'Paris', celsius: 14 } } }] }]);
    try {
      await weather(llm);
      await weather(llm);
      const body = bodyOf(server.requests[0]);
      assert.deepEqual(body.system, [
        { type: 'text', text: 'You report the weather. Always answer with the report tool.', cache_control: { type: 'ephemeral' } },
      ]);
      assert.deepEqual(body.messages, [{ role: 'user', content: 'Weather in Paris?' }]);
      // The scripted model simulates the cache: written on the first call, read on the second.
      assert.ok(usages[0]!.cacheCreationTokens > 0 && usages[0]!.cacheReadTokens === 0);
      assert.ok(usages[1]!.cacheReadTokens > 0 && usages[1]!.cacheCreationTokens === 0);
      assert.equal(usages[1]!.cacheReadTokens, usages[0]!.cacheCreationTokens);
    } finally {
      await server.close();
    }
  });
});

describe('agentTurn activity', () => {
  let server: ScriptedModel;
  before(async () => {
    server = await startScriptedModel({ scenarioFiles: [path.join(root, 'scenarios', 'demo.json')] });
  });
  after(() => server.close());

  const task = (text: string) => [{ role: 'user' as const, content: harness.prompts.agent.task(text) }];

  it('offers the catalog tools and the meta-tools, and returns the tool call the model made, values from the task', async () => {
    const { agentTurn } = llmActivities(createLlm({ baseURL: server.url, model: MODEL }));
    const countWords = {
      name: 'count_words',
      description: 'Counts words.',
      inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
    };
    const turn = await agentTurn({ messages: task('how many words are in "ü ✓ {braces}"?'), tools: [countWords] });
    const call = turn.content.find((b) => b.type === 'tool_use');
    assert.equal(call?.name, 'count_words');
    assert.deepEqual(call?.input, { text: 'ü ✓ {braces}' });
    assert.equal(turn.stopReason, 'tool_use');
    assert.ok(turn.tokens.input > 0 && turn.tokens.output > 0);
    const body = bodyOf(server.requests.at(-1));
    assert.deepEqual(
      body.tools.map((t) => t.name),
      ['count_words', 'search_tools', 'forge_tool', 'ask_person'],
    );
    assert.equal(body.system[0]?.cache_control?.type, 'ephemeral');
  });

  it('answers in words when the task needs no tool', async () => {
    const { agentTurn } = llmActivities(createLlm({ baseURL: server.url, model: MODEL }));
    const turn = await agentTurn({ messages: task('Summarise the README'), tools: [] });
    assert.equal(turn.stopReason, 'end_turn');
    assert.deepEqual(
      turn.content.map((b) => b.type),
      ['text'],
    );
    assert.match(turn.content[0]?.type === 'text' ? turn.content[0].text : '', /Summarise the README/);
  });

  it('rejects an empty transcript without calling the model', async () => {
    const { agentTurn } = llmActivities(createLlm({ baseURL: server.url, model: MODEL }));
    const before = server.requests.length;
    const f = await failureOf(agentTurn({ messages: [], tools: [] }));
    assert.equal(f.nonRetryable, true);
    assert.equal(f.type, 'InvalidInput');
    assert.equal(server.requests.length, before);
  });
});

describe('a failed call says why once, in one sentence', () => {
  it('the model server down: "Connection error." is not followed by a second full stop', async () => {
    const llm = createLlm({ baseURL: 'http://127.0.0.1:1', model: MODEL, recordUsage: async () => {}, scope: activityScope });
    const err = await weather(llm, 'improve.rewrite').then(
      () => assert.fail('no model server answers'),
      (e: unknown) => e as Error,
    );
    assert.match(
      err.message,
      /^LLM call "improve\.rewrite" to claude-sonnet-4-6 failed: Connection error\. could not reach the model server/,
    );
    assert.doesNotMatch(err.message, /\.\./);
  });

  it("the API's own message ending in a full stop, with no error type: no '..', no ' :'", async () => {
    const { server, llm } = await setup([{ responses: [{ error: { status: 500, message: 'Internal server error.' } }] }]);
    try {
      const err = await weather(llm).then(
        () => assert.fail('the API failed'),
        (e: unknown) => e as Error,
      );
      assert.match(err.message, /failed with HTTP 500( \S+)?: Internal server error\. the API failed with 500; Temporal will retry$/);
      assert.doesNotMatch(err.message, /\.\.| :/);
    } finally {
      await server.close();
    }
  });
});
