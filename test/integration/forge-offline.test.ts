import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ForgeOutcome } from '../../domain/forge.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { forgeProgressQuery } from '../../workflows/definitions.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { OFFLINE_HOST, unauthenticatedTool } from '../helpers/offline-tool.ts';

// Fair verdicts both ways, through the whole forge cycle: a tool for an unauthenticated API is
// forged on a machine that cannot reach that API. The live stage runs (safe read, no secret
// needed) but this machine cannot resolve the host, so the stage is skipped with that reason and
// the tool registers on its first attempt, instead of failing and spending repairs on right code.
// The scenario has no repair rule: a repair would end the forge with "no scenario rule".
const scenario: ScenarioInput = {
  name: 'forge-offline-holidays',
  rules: [
    {
      name: 'spec',
      match: { purpose: 'forge.spec', user: '/<need>\\n[^\\n]*public holidays/i' },
      responses: [
        {
          tool_use: {
            name: 'submit_spec',
            input: {
              name: 'list_public_holidays',
              description: 'The public holidays of a country in a year, from an open API that needs no key.',
              docstring: 'Parameters: year (1900-2100) and countryCode (ISO 3166-1 alpha-2). Returns { holidays: [{ date, name }] }.',
              parameters: [
                { name: 'year', type: 'integer', description: 'the year', required: true },
                { name: 'countryCode', type: 'string', description: 'ISO 3166-1 alpha-2 code, e.g. NL', required: true },
              ],
              returns: { type: 'object', description: '{ holidays: Array<{ date: string, name: string }> }' },
              sideEffect: 'read',
              destructive: false,
              permissions: { network: [OFFLINE_HOST], env: [] },
            },
          },
        },
      ],
    },
    {
      name: 'api spec',
      match: { purpose: 'forge.api', user: '/^Tool: list_public_holidays$/m' },
      responses: [
        { tool_use: { name: 'submit_api_spec', input: { needsApi: true, apiSpec: JSON.parse(unauthenticatedTool['api-spec.json']!) } } },
      ],
    },
    {
      name: 'tests',
      match: { purpose: 'forge.tests', user: '/^Tool: list_public_holidays$/m' },
      responses: [{ tool_use: { name: 'submit_tests', input: { tests: unauthenticatedTool['tool.test.ts']! } } }],
    },
    {
      name: 'implementation',
      match: { purpose: 'forge.implementation', user: '/^Tool: list_public_holidays$/m' },
      responses: [{ tool_use: { name: 'submit_implementation', input: { source: unauthenticatedTool['tool.ts']! } } }],
    },
  ],
};

describe('forging offline', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ scenarios: [scenario], env: { FORGE_POOL_SIZE: '1' } });
  });

  after(() => h.close());

  it('registers a tool for an unauthenticated API on its first attempt, with the live stage skipped and the reason on record', async () => {
    const handle = await h.client.workflow.start('forgeWorkflow', {
      taskQueue: h.cfg.FORGE_TASK_QUEUE,
      workflowId: `forge-offline-${Date.now()}`,
      args: [{ need: 'list the public holidays of a country in a year', sandboxQueue: h.cfg.FORGE_SANDBOX_QUEUE }],
    });
    const outcome = (await handle.result()) as ForgeOutcome;
    assert.equal(outcome.status, 'registered', JSON.stringify(outcome).slice(0, 3000));
    assert.equal(outcome.status === 'registered' && outcome.attempts, 1, 'no repair was spent');
    const live = outcome.report?.stages.find((s) => s.stage === 'live');
    assert.equal(live?.status, 'skipped');
    assert.match(live!.reason!, /^live stage skipped: api\.holidays\.invalid could not be resolved from this machine \(offline\?/);
    const progress = await handle.query(forgeProgressQuery);
    assert.deepEqual(
      progress.attempts.map((a) => a.passed),
      [true],
    );
    assert.match(
      progress.attempts[0]!.summary,
      /## live: SKIPPED\nreason: live stage skipped: api\.holidays\.invalid could not be resolved/,
    );
    const rows = await h.db.sql`select version from tool_versions where name = 'list_public_holidays'`;
    assert.deepEqual(
      rows.map((r) => r.version),
      [1],
    );
  });
});
