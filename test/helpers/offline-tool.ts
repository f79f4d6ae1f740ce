/**
 * A tool for an API that needs no authentication, so its live stage runs. Its host is under
 * .invalid, which never resolves (RFC 6761): the offline case, on any machine.
 */
export const OFFLINE_HOST = 'api.holidays.invalid';
export const unauthenticatedTool: Record<string, string> = {
  'tool.ts': `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';

const API = 'https://${OFFLINE_HOST}/v3';

export const manifest = {
  name: 'list_public_holidays',
  description: 'The public holidays of a country in a year, from an open API that needs no key.',
  sideEffect: 'read',
  destructive: false,
  permissions: { network: ['${OFFLINE_HOST}'], env: [] },
  input: z
    .object({ year: z.number().int().min(1900).max(2100), countryCode: z.string().regex(/^[A-Z]{2}$/) })
    .meta({ examples: [{ year: 2024, countryCode: 'NL' }] }),
  output: z.object({ holidays: z.array(z.object({ date: z.string(), name: z.string() })) }),
};

const answer = z.array(z.object({ date: z.string(), localName: z.string(), name: z.string() }));

const MAX_ATTEMPTS = 3;

export async function run(input: { year: number; countryCode: string }, ctx: ToolContext) {
  const url = \`\${API}/PublicHolidays/\${input.year}/\${input.countryCode}\`;
  for (let attempt = 1; ; attempt++) {
    const res = await ctx.fetch(url, { headers: { accept: 'application/json' } });
    if ((res.status === 429 || res.status >= 500) && attempt < MAX_ATTEMPTS) {
      // Retry-After's seconds when the API sends them (capped), else a short backoff.
      const header = res.headers.get('retry-after');
      const seconds = header === null ? Number.NaN : Number(header);
      const ms = Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 5) * 1000 : 100 * attempt;
      await new Promise((resolve) => setTimeout(resolve, ms));
      continue;
    }
    if (!res.ok) throw new Error(\`the holidays API answered \${res.status} after \${attempt} attempt(s)\`);
    return { holidays: answer.parse(await res.json()).map((h) => ({ date: h.date, name: h.name })) };
  }
}
`,
  'tool.test.ts': `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';

test('lists the holidays the API reports', async () => {
  const ctx = testContext({});
  const out = await run({ year: 2024, countryCode: 'NL' }, ctx);
  assert.deepEqual(out.holidays[0], { date: '2024-01-01', name: "New Year's Day" });
  assert.equal(ctx.calls.length, 1);
});

test('says what the API answered when it fails', async () => {
  const ctx = testContext({ faults: [{ kind: 'server_error', status: 503 }] });
  await assert.rejects(run({ year: 2024, countryCode: 'NL' }, ctx), /answered 503/);
});
`,
  'api-spec.json': JSON.stringify({
    baseUrl: `https://${OFFLINE_HOST}/v3`,
    auth: { kind: 'none' },
    endpoints: [
      {
        id: 'publicHolidays',
        method: 'GET',
        path: '/PublicHolidays/{year}/{countryCode}',
        description: 'The public holidays of a country in a year.',
        safeRead: true,
        response: {
          type: 'array',
          items: {
            type: 'object',
            properties: { date: { type: 'string' }, localName: { type: 'string' }, name: { type: 'string' } },
            required: ['date', 'localName', 'name'],
          },
        },
        example: [
          { date: '2024-01-01', localName: 'Nieuwjaarsdag', name: "New Year's Day" },
          { date: '2024-04-27', localName: 'Koningsdag', name: "King's Day" },
        ],
      },
    ],
  }),
};
