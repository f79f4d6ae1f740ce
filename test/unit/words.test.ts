/**
 * Messages read "is a improveWorkflow" and "is a escalation approval": the article now follows the
 * word, and a workflow type reads as the cycle it is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withArticle, workflowTypeInWords } from '../../domain/words.ts';

describe('words in messages', () => {
  it('"an" before a vowel, "a" before anything else', () => {
    assert.deepEqual(['escalation', 'evolve', 'write', 'budget', 'question', 'improve'].map(withArticle), [
      'an escalation',
      'an evolve',
      'a write',
      'a budget',
      'a question',
      'an improve',
    ]);
  });

  it('a workflow type reads as its cycle, named as Temporal names it', () => {
    assert.equal(workflowTypeInWords('improveWorkflow'), 'an improve cycle (improveWorkflow)');
    assert.equal(workflowTypeInWords('toolCallWorkflow'), 'a tool call cycle (toolCallWorkflow)');
    assert.equal(workflowTypeInWords('evolveWorkflow'), 'an evolve cycle (evolveWorkflow)');
    assert.equal(workflowTypeInWords('someone-elses'), 'a workflow of type someone-elses');
  });
});
