import type { RegisterInput } from '../../services/catalog/store.ts';

/**
 * A registered tool's source shared by tests that need a local read tool with a clear error:
 * roman_numeral writes 1..3999 and refuses anything else with an Error that says why.
 */
export const romanSource = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

export const manifest = {
  name: 'roman_numeral',
  description: 'Writes a whole number in roman numerals.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: [], env: [] },
  input: z.object({ number: z.number().int() }).meta({ examples: [{ number: 1987 }] }),
  output: z.object({ roman: z.string() }),
};

const DIGITS: [number, string][] = [
  [1000, 'M'], [900, 'CM'], [500, 'D'], [400, 'CD'], [100, 'C'], [90, 'XC'],
  [50, 'L'], [40, 'XL'], [10, 'X'], [9, 'IX'], [5, 'V'], [4, 'IV'], [1, 'I'],
];

export async function run(input: { number: number }, _ctx: ToolContext) {
  let n = input.number;
  if (n < 1 || n > 3999) throw new Error(\`\${n} cannot be written in roman numerals: they run from 1 to 3999\`);
  let roman = '';
  for (const [value, letters] of DIGITS) for (; n >= value; n -= value) roman += letters;
  return { roman };
}
`;

/** roman_numeral's own suite, as a registered version carries it. */
export const romanTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './tool.ts';

test('writes roman numerals', async () => {
  assert.deepEqual(await run({ number: 4 }, {} as never), { roman: 'IV' });
});
`;

/**
 * roman_numeral under another name, as a person registers it (no model needed): tests that improve
 * or call it take names of their own, since workflow ids like improve-<tool> are the shared Temporal's.
 */
export function romanVersion(name: string, idempotencyKey: string): RegisterInput {
  return {
    name,
    source: romanSource.replace("name: 'roman_numeral'", `name: '${name}'`),
    tests: romanTests,
    manifest: {
      description: 'Writes a whole number in roman numerals.',
      sideEffect: 'read',
      destructive: false,
      permissions: { network: [], env: [] },
      inputSchema: { type: 'object', properties: { number: { type: 'integer' } }, required: ['number'] },
      outputSchema: { type: 'object' },
    },
    createdBy: 'human',
    idempotencyKey,
  };
}
