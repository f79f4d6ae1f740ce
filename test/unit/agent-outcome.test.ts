import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import type { AgentCall } from '../../domain/agent.ts';
import { outcomeOf } from '../../domain/task.ts';
import { callTool } from '../../runner/call.ts';
import type { LoadedTool } from '../../runner/tool-module.ts';

const call = (tool: string, status: AgentCall['status'], extra: Partial<AgentCall> = {}): AgentCall => ({
  turn: 1,
  id: `toolu_${tool}_${status}`,
  tool,
  input: {},
  status,
  ...extra,
});

describe('a task’s outcome from its calls', () => {
  it('fails when a tool’s last call failed or never ran, and a retry that succeeded makes it good', () => {
    assert.deepEqual(outcomeOf([call('count_words', 'failed', { reason: 'boom' })]), { status: 'failed', reason: 'count_words: boom' });
    assert.deepEqual(outcomeOf([call('count_words', 'failed'), call('count_words', 'succeeded')]), { status: 'completed' });
    assert.equal(outcomeOf([call('create_note', 'not-run'), call('count_words', 'succeeded')]).status, 'failed');
  });

  it('forgives the model’s slip once a later call succeeded, and only then', () => {
    const wrongName = call('word_counter', 'not-run', { slip: 'unknown-tool', reason: 'word_counter is not one of the offered tools' });
    assert.deepEqual(outcomeOf([wrongName, call('count_words', 'succeeded')]), { status: 'completed' });
    assert.deepEqual(outcomeOf([call('count_words', 'succeeded'), wrongName]), {
      status: 'failed',
      reason: 'word_counter: word_counter is not one of the offered tools',
    });
    const badForge = call('forge_tool', 'failed', { slip: 'invalid-input', reason: 'invalid forge_tool input' });
    assert.equal(outcomeOf([badForge]).status, 'failed', 'a slip nothing made good still fails the task');
  });
});

describe('the runner’s refusal of input that does not fit', () => {
  const tool: LoadedTool = {
    name: 'count_words',
    description: 'counts words',
    permissions: { network: [], env: [] },
    input: z.object({ text: z.string() }),
    output: z.object({ words: z.number() }),
    run: (input) => ({ words: String((input as { text: string }).text).split(/\s+/).length }),
  };

  it('names the fields the tool does not take, with the ones it does', async () => {
    const r = await callTool(tool, { txt: 1 }, { env: {}, timeoutMs: 1000 });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'INPUT_INVALID');
    assert.equal(
      r.error?.message,
      'invalid input for count_words: text: Invalid input: expected string, received undefined; not a parameter: txt (the parameters are: text)',
    );
  });

  it('says only what is wrong when every field is known', async () => {
    const r = await callTool(tool, { text: 1 }, { env: {}, timeoutMs: 1000 });
    assert.equal(r.error?.message, 'invalid input for count_words: text: Invalid input: expected string, received number');
    assert.equal((await callTool(tool, { text: 'a b' }, { env: {}, timeoutMs: 1000 })).ok, true);
  });
});
