import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inputProblem } from '../../domain/tool-input.ts';

// The schema manifest.json declares for count_words: what the host judges a call's input by.
const schema = {
  type: 'object',
  properties: { text: { type: 'string', maxLength: 10 } },
  required: ['text'],
  additionalProperties: false,
};

describe('a call input judged on the host against the declared schema', () => {
  it('accepts input that fits', () => {
    assert.equal(inputProblem('count_words', schema, { text: 'a b c' }), undefined);
  });

  it('names the missing field and the stray one, and lists the parameters', () => {
    assert.equal(
      inputProblem('count_words', schema, { txt: 1 }),
      'invalid input for count_words: text: Invalid input: expected string, received undefined; not a parameter: txt (the parameters are: text)',
    );
  });

  it('names a wrong type and a broken bound', () => {
    assert.match(
      inputProblem('count_words', schema, { text: 5 }) ?? '',
      /^invalid input for count_words: text: .*expected string, received number$/,
    );
    assert.match(inputProblem('count_words', schema, { text: 'x'.repeat(11) }) ?? '', /text: .*<=10 characters/);
  });

  it('leaves a schema it cannot read to the sandbox', () => {
    assert.equal(inputProblem('odd_tool', { type: 'no-such-type' }, { any: 1 }), undefined);
  });
});
