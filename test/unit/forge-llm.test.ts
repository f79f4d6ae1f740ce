import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forgeLlmActivities } from '../../activities/llm.ts';
import { InvalidInputError } from '../../domain/errors.ts';
import type { ToolSpec } from '../../domain/forge.ts';
import { openApiToPartialApiSpec } from '../../domain/openapi.ts';
import type { ApiSpec } from '../../domain/tool.ts';
import { harness } from '../../harness/index.ts';
import type { ScenarioInput } from '../../scripted-model/scenario.ts';
import { type RecordedRequest, startScriptedModel } from '../../scripted-model/server.ts';
import { createLlm } from '../../services/llm/client.ts';
import { FORGE_PURPOSES, importsOf, testsSourceProblems, toolSourceProblems } from '../../services/llm/forge-author.ts';
import { failureOf } from '../helpers/failures.ts';

// The forge's prompts are the harness's: what the model is sent must be exactly these.
const { forge } = harness.prompts;
const {
  spec: { system: SPEC_SYSTEM },
  api: { system: API_SYSTEM },
  tests: { system: TESTS_SYSTEM },
  implementation: { system: IMPLEMENTATION_SYSTEM },
  repair: { system: REPAIR_SYSTEM },
} = forge;
const FORGE_TOOLS = {
  spec: forge.spec.tool.name,
  api: forge.api.tool.name,
  tests: forge.tests.tool.name,
  implementation: forge.implementation.tool.name,
  repair: forge.repair.tool.name,
};
const draftForPrompt = forge.api.draft;

const spec: ToolSpec = {
  name: 'get_weather',
  description: 'Current weather for a city from the Example Weather API.',
  docstring: 'city: the city name. Returns { city, celsius }. Errors: "WEATHER_API_KEY is not set".',
  parameters: [{ name: 'city', type: 'string', description: 'city name', required: true }],
  returns: { type: 'object', description: '{ city, celsius }' },
  sideEffect: 'read',
  destructive: false,
  permissions: { network: ['api.weather.example'], env: ['WEATHER_API_KEY'] },
};

const apiSpec: ApiSpec = {
  baseUrl: 'https://api.weather.example/v1',
  auth: { kind: 'header', name: 'x-api-key', envVar: 'WEATHER_API_KEY' },
  endpoints: [
    { id: 'current', method: 'GET', path: '/current', description: '', safeRead: true, response: { type: 'object' }, errorCodes: [] },
  ],
};

const goodSource = `import { z } from 'zod';
import type { ToolContext } from '@forge/tool';
export const manifest = {
  name: 'get_weather',
  description: 'Current weather.',
  sideEffect: 'read',
  permissions: { network: ['api.weather.example'], env: ['WEATHER_API_KEY'] },
  input: z.object({ city: z.string() }),
  output: z.object({ city: z.string(), celsius: z.number() }),
};
export async function run(input: { city: string }, ctx: ToolContext) {
  return { city: input.city, celsius: 1 };
}
`;

const goodTests = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testContext } from '@forge/testkit';
import { run } from './tool.ts';
test('works', async () => { assert.ok(await run({ city: 'Paris' }, testContext({ env: { WEATHER_API_KEY: 'k' } }))); });
`;

/** A scripted model with one scenario, and the forge activities pointed at it. */
async function setup(rules: ScenarioInput['rules']) {
  const server = await startScriptedModel({ scenarios: [{ name: 'forge-llm-unit', rules }] });
  const activities = forgeLlmActivities(createLlm({ baseURL: server.url, model: 'claude-sonnet-4-6' }));
  return { server, activities };
}

const reply = (tool: string, ...inputs: Record<string, unknown>[]): ScenarioInput['rules'][number] => ({
  match: { tool },
  responses: inputs.map((input) => ({ tool_use: { name: tool, input } })),
});

type Body = { system: { text: string }[]; messages: { role: string; content: unknown }[]; tool_choice: { name: string } };
const bodyOf = (r: RecordedRequest | undefined) => r?.body as Body;
const userText = (r: RecordedRequest | undefined) => JSON.stringify(bodyOf(r).messages.at(-1)?.content);

describe('system prompts', () => {
  const all = { SPEC_SYSTEM, API_SYSTEM, TESTS_SYSTEM, IMPLEMENTATION_SYSTEM, REPAIR_SYSTEM };

  it('every step states the tool contract', () => {
    for (const [name, text] of Object.entries(all)) {
      for (const phrase of [
        'export const manifest',
        'export async function run(input',
        "import type { ToolContext } from '@forge/tool'",
        "imports only 'zod'",
        'ctx.fetch',
        'ctx.env',
        'permissions.network',
        'Retry-After',
        'eval',
        'child_process',
        'zod schema',
        'never swallowed',
      ]) {
        assert.ok(text.includes(phrase), `${name} should mention ${phrase}`);
      }
    }
  });

  it('the test-writing prompts state what tests may import and the testkit faults', () => {
    for (const [name, text] of Object.entries({ TESTS_SYSTEM, IMPLEMENTATION_SYSTEM, REPAIR_SYSTEM })) {
      for (const phrase of [
        "'node:test'",
        "'node:assert/strict'",
        "'@forge/testkit'",
        "'./tool.ts'",
        'rate_limit',
        'server_error',
        'timeout',
        'malformed_json',
        'wrong_types',
      ]) {
        assert.ok(text.includes(phrase), `${name} should mention ${phrase}`);
      }
    }
    assert.match(TESTS_SYSTEM, /BEFORE the implementation/);
    assert.match(REPAIR_SYSTEM, /never the tests/);
  });

  it('are static: two different tools get byte-identical system prompts (so the prompt cache hits)', async () => {
    const other = { ...spec, name: 'get_forecast' };
    const { server, activities } = await setup([reply(FORGE_TOOLS.tests, { tests: goodTests })]);
    try {
      await activities.writeTests({ spec, apiSpec });
      await activities.writeTests({ spec: other, apiSpec: null });
      const [a, b] = server.requests.map(bodyOf);
      assert.equal(a!.system[0]!.text, TESTS_SYSTEM);
      assert.equal(b!.system[0]!.text, TESTS_SYSTEM);
      assert.match(userText(server.requests[0]), /^"Tool: get_weather/);
      assert.match(userText(server.requests[1]), /API spec: none/);
    } finally {
      await server.close();
    }
  });
});

describe('writeSpec', () => {
  it('sends the need with purpose forge.spec and forces submit_spec', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.spec, spec)]);
    try {
      const out = await activities.writeSpec({ need: 'the current weather in a city', name: 'get_weather' });
      assert.equal(out.name, 'get_weather');
      const req = server.requests[0];
      assert.equal(req?.headers['x-forge-purpose'], FORGE_PURPOSES.spec);
      assert.equal(bodyOf(req).tool_choice.name, 'submit_spec');
      assert.match(userText(req), /<need>\\nthe current weather in a city\\n<\/need>/);
      assert.match(userText(req), /Requested name: get_weather/);
    } finally {
      await server.close();
    }
  });

  it('rejects a spec whose name differs from the requested one, saying which name to use', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.spec, { ...spec, name: 'weather_now' })]);
    try {
      const err = await failureOf(activities.writeSpec({ need: 'the current weather in a city', name: 'get_weather' }));
      assert.equal(err.type, 'LlmOutputInvalid');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /name is 'weather_now' but the tool was requested as 'get_weather': use exactly 'get_weather'/);
      // The model was told once, through the structured-output retry, before the activity gave up.
      assert.equal(server.requests.length, 2);
      assert.match(userText(server.requests[1]), /use exactly 'get_weather'/);
    } finally {
      await server.close();
    }
  });

  it('accepts the corrected spec when the model fixes the name on the retry', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.spec, { ...spec, name: 'weather_now' }, spec)]);
    try {
      const out = await activities.writeSpec({ need: 'the current weather in a city', name: 'get_weather' });
      assert.equal(out.name, 'get_weather');
    } finally {
      await server.close();
    }
  });

  it('lets the model choose the name when none is requested', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.spec, { ...spec, name: 'weather_now' })]);
    try {
      assert.equal((await activities.writeSpec({ need: 'the current weather in a city' })).name, 'weather_now');
    } finally {
      await server.close();
    }
  });

  it('rejects invalid input before calling the model', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.spec, spec)]);
    try {
      const err = await failureOf(activities.writeSpec({ need: 'short' }));
      assert.equal(err.type, 'InvalidInput');
      assert.equal(err.nonRetryable, true);
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });
});

describe('extractApiSpec', () => {
  it('returns null when the reply says needsApi false', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.api, { needsApi: false })]);
    try {
      assert.equal(await activities.extractApiSpec({ spec }), null);
      assert.equal(server.requests[0]?.headers['x-forge-purpose'], FORGE_PURPOSES.api);
    } finally {
      await server.close();
    }
  });

  it('returns the API spec when one is needed', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.api, { needsApi: true, apiSpec })]);
    try {
      const out = await activities.extractApiSpec({ spec, apiDocs: 'GET /v1/current?city=... with header x-api-key' });
      assert.equal(out?.baseUrl, apiSpec.baseUrl);
      assert.match(userText(server.requests[0]), /API documentation:/);
    } finally {
      await server.close();
    }
  });

  it('rejects an API whose host or secret the spec did not declare', async () => {
    const bad = { ...apiSpec, baseUrl: 'https://evil.example/v1', auth: { kind: 'bearer', envVar: 'OTHER_KEY' } };
    const { server, activities } = await setup([reply(FORGE_TOOLS.api, { needsApi: true, apiSpec: bad })]);
    try {
      const err = await failureOf(activities.extractApiSpec({ spec }));
      assert.equal(err.type, 'LlmOutputInvalid');
      assert.match(err.message, /baseUrl host 'evil\.example' is not among the spec's permissions\.network/);
      assert.match(err.message, /auth\.envVar 'OTHER_KEY' is not among the spec's permissions\.env/);
    } finally {
      await server.close();
    }
  });

  it('rejects needsApi true without an apiSpec', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.api, { needsApi: true })]);
    try {
      assert.match((await failureOf(activities.extractApiSpec({ spec }))).message, /needsApi is true, so apiSpec is required/);
    } finally {
      await server.close();
    }
  });

  it('gives the model a draft derived from an OpenAPI document', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.api, { needsApi: true, apiSpec })]);
    try {
      await activities.extractApiSpec({ spec, openApi: petstore });
      const text = userText(server.requests[0]);
      assert.match(text, /Draft derived deterministically from the OpenAPI document/);
      assert.match(text, /https:\/\/api\.weather\.example\/v1/);
      assert.match(text, /getCurrent/);
    } finally {
      await server.close();
    }
  });

  it('fails without calling the model when the OpenAPI document is not one', async () => {
    const { server, activities } = await setup([reply(FORGE_TOOLS.api, { needsApi: false })]);
    try {
      const err = await failureOf(activities.extractApiSpec({ spec, openApi: { hello: 'world' } }));
      assert.equal(err.type, 'InvalidInput');
      assert.match(err.message, /neither an "openapi" nor a "swagger"/);
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });
});

describe('writeTests, writeImplementation, repairImplementation', () => {
  it('return what the model wrote, under their purposes and tools', async () => {
    const { server, activities } = await setup([
      reply(FORGE_TOOLS.tests, { tests: goodTests }),
      reply(FORGE_TOOLS.implementation, { source: goodSource }),
      reply(FORGE_TOOLS.repair, { source: goodSource, diagnosis: 'no retry on 429' }),
    ]);
    try {
      assert.deepEqual(await activities.writeTests({ spec, apiSpec }), { tests: goodTests });
      assert.deepEqual(await activities.writeImplementation({ spec, apiSpec, tests: goodTests }), { source: goodSource });
      const repaired = await activities.repairImplementation({
        spec,
        apiSpec,
        tests: goodTests,
        source: goodSource,
        failures: 'VERIFICATION FAILED at stage "mock"',
        attempt: 2,
      });
      assert.deepEqual(repaired, { source: goodSource, diagnosis: 'no retry on 429' });
      assert.deepEqual(
        server.requests.map((r) => r.headers['x-forge-purpose']),
        [FORGE_PURPOSES.tests, FORGE_PURPOSES.implementation, FORGE_PURPOSES.repair],
      );
      assert.deepEqual(
        server.requests.map((r) => bodyOf(r).tool_choice.name),
        ['submit_tests', 'submit_implementation', 'submit_repair'],
      );
      const repairText = userText(server.requests[2]);
      assert.match(repairText, /repair attempt 2/);
      assert.match(repairText, /VERIFICATION FAILED at stage/);
    } finally {
      await server.close();
    }
  });

  it('rejects an implementation whose manifest names another tool', async () => {
    const wrong = goodSource.replace("name: 'get_weather'", "name: 'weather'");
    const { server, activities } = await setup([reply(FORGE_TOOLS.implementation, { source: wrong })]);
    try {
      const err = await failureOf(activities.writeImplementation({ spec, apiSpec, tests: goodTests }));
      assert.equal(err.type, 'LlmOutputInvalid');
      assert.match(err.message, /manifest\.name is 'weather' but the spec names the tool 'get_weather'/);
    } finally {
      await server.close();
    }
  });

  it('rejects a repair that imports a module tools may not use', async () => {
    const bad = `import fs from 'node:fs';\n${goodSource}`;
    const { server, activities } = await setup([reply(FORGE_TOOLS.repair, { source: bad, diagnosis: 'x' })]);
    try {
      const err = await failureOf(
        activities.repairImplementation({ spec, apiSpec, tests: goodTests, source: goodSource, failures: 'x', attempt: 1 }),
      );
      assert.match(err.message, /imports 'node:fs'/);
    } finally {
      await server.close();
    }
  });
});

describe('reply checks', () => {
  it('reads import specifiers and whether they are type-only', () => {
    assert.deepEqual(importsOf(goodSource), [
      { specifier: 'zod', typeOnly: false },
      { specifier: '@forge/tool', typeOnly: true },
    ]);
    assert.deepEqual(importsOf("import './side-effect';\nexport * from 'x';"), [
      { specifier: './side-effect', typeOnly: false },
      { specifier: 'x', typeOnly: false },
    ]);
  });

  it('finds missing exports, a value import of @forge/tool and a wrong sideEffect', () => {
    assert.deepEqual(toolSourceProblems(goodSource, spec), []);
    const problems = toolSourceProblems(
      goodSource
        .replace('export async function run', 'async function run')
        .replace('import type { ToolContext }', 'import { ToolContext }')
        .replace("sideEffect: 'read'", "sideEffect: 'write'"),
      spec,
    );
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('export async function run')));
    assert.ok(problems.some((p) => p.includes('type-only')));
    assert.ok(problems.some((p) => p.includes("manifest.sideEffect is 'write'")));
    assert.match(toolSourceProblems('export async function run() {}', spec)[0]!, /export const manifest/);
  });

  it('finds test files that cannot run or prove anything', () => {
    assert.deepEqual(testsSourceProblems(goodTests), []);
    const problems = testsSourceProblems("import { test } from 'node:test';\nimport { run } from './tool';\ntest.skip('x', () => {});");
    assert.ok(problems.some((p) => p.includes("imports './tool' (write './tool.ts')")));
    assert.ok(problems.some((p) => p.includes('skips tests')));
  });
});

// ---------------------------------------------------------------------------

const petstore = {
  openapi: '3.0.3',
  info: { title: 'Weather', version: '1' },
  servers: [{ url: 'https://api.weather.{tld}/v1/', variables: { tld: { default: 'example' } } }],
  security: [{ apiKey: [] }],
  components: {
    securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' }, oauth: { type: 'oauth2' } },
    parameters: { city: { name: 'city', in: 'query', required: true, description: 'city name', schema: { type: 'string' } } },
    schemas: {
      Current: {
        type: 'object',
        properties: { city: { type: 'string' }, celsius: { type: 'number' }, station: { $ref: '#/components/schemas/Station' } },
        required: ['city', 'celsius'],
      },
      Station: {
        type: 'object',
        properties: { id: { type: 'string' }, nearby: { type: 'array', items: { $ref: '#/components/schemas/Station' } } },
      },
      Alert: { type: 'object', properties: { message: { type: 'string' } } },
    },
  },
  paths: {
    '/current': {
      get: {
        operationId: 'getCurrent',
        summary: 'Current weather',
        parameters: [
          { $ref: '#/components/parameters/city' },
          { name: 'units', in: 'query', schema: { type: 'string', enum: ['metric', 'imperial'] } },
        ],
        responses: {
          '200': {
            description: 'ok',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Current' }, example: { city: 'Paris', celsius: 14 } } },
          },
          '401': { description: 'bad key' },
          '429': { description: 'slow down' },
        },
      },
    },
    '/alerts/{alertId}': {
      parameters: [{ name: 'alertId', in: 'path', required: true, schema: { type: 'string' } }],
      get: { operationId: 'deleteAlertLegacy', responses: { '200': { description: 'gone' } } },
      post: {
        summary: 'Create an alert',
        requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Alert' } } } },
        responses: {
          '201': {
            description: 'created',
            content: {
              'application/json': { schema: { $ref: '#/components/schemas/Alert' }, examples: { one: { value: { message: 'hi' } } } },
            },
          },
        },
      },
      head: { responses: { '200': { description: 'exists' } } },
    },
  },
};

describe('OpenAPI → partial ApiSpec', () => {
  it('reads the base URL (with server variables), the auth and each endpoint', () => {
    const draft = openApiToPartialApiSpec(petstore);
    assert.equal(draft.baseUrl, 'https://api.weather.example/v1');
    assert.deepEqual(draft.auth, { kind: 'header', name: 'x-api-key' });
    assert.deepEqual(
      draft.endpoints.map((e) => `${e.method} ${e.path} ${e.id}`),
      ['GET /current getCurrent', 'GET /alerts/{alertId} deleteAlertLegacy', 'POST /alerts/{alertId} post_alerts_by_alertId'],
    );
  });

  it('inlines $refs into query, body and response schemas, and keeps examples and error codes', () => {
    const [current, , create] = openApiToPartialApiSpec(petstore).endpoints;
    assert.deepEqual(current!.query, {
      type: 'object',
      properties: { city: { type: 'string', description: 'city name' }, units: { type: 'string', enum: ['metric', 'imperial'] } },
      required: ['city'],
    });
    assert.equal((current!.response as { required: string[] }).required[1], 'celsius');
    assert.deepEqual(current!.example, { city: 'Paris', celsius: 14 });
    assert.deepEqual(current!.errorCodes, [
      { status: 401, meaning: 'bad key' },
      { status: 429, meaning: 'slow down' },
    ]);
    assert.equal(current!.description, 'Current weather');
    assert.deepEqual(create!.requestBody, { type: 'object', properties: { message: { type: 'string' } } });
    assert.deepEqual(create!.example, { message: 'hi' });
  });

  it('marks only GETs that change nothing as safe reads', () => {
    const [current, legacyDelete, create] = openApiToPartialApiSpec(petstore).endpoints;
    assert.equal(current!.safeRead, true);
    assert.equal(legacyDelete!.safeRead, false, 'a GET named delete… is not safe');
    assert.equal(create!.safeRead, false);
  });

  it('cuts recursive schemas and notes what it skipped', () => {
    const draft = openApiToPartialApiSpec(petstore);
    const station = (draft.endpoints[0]!.response as { properties: { station: { properties: { nearby: { items: unknown } } } } }).properties
      .station;
    assert.deepEqual(station.properties.nearby.items, { description: 'recursive: see #/components/schemas/Station' });
    assert.ok(draft.notes.some((n) => n.includes('recursive schema')));
    assert.ok(draft.notes.some((n) => n.includes('HEAD/OPTIONS/TRACE')));
  });

  it('bounds the inlining of schemas reused at every level', () => {
    // 10 × 10 × 10 refs: inlining everything would be 1,110 copies for one endpoint.
    const fan = (next: string) => ({
      type: 'object',
      properties: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, { $ref: `#/components/schemas/${next}` }])),
    });
    const draft = openApiToPartialApiSpec({
      openapi: '3.0.0',
      servers: [{ url: 'https://api.example.com' }],
      components: { schemas: { A: fan('B'), B: fan('C'), C: fan('D'), D: { type: 'string' } } },
      paths: {
        '/a': {
          get: {
            responses: { '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/A' } } } } },
          },
        },
      },
    });
    assert.ok(draft.notes.some((n) => n.includes('too large to inline')));
    assert.ok(JSON.stringify(draft.endpoints[0]!.response).includes('omitted for size'));
  });

  it('reads Swagger 2 documents too', () => {
    const draft = openApiToPartialApiSpec({
      swagger: '2.0',
      host: 'api.example.com',
      basePath: '/v2',
      schemes: ['http', 'https'],
      securityDefinitions: { key: { type: 'apiKey', in: 'query', name: 'api_key' } },
      definitions: { Pet: { type: 'object', properties: { name: { type: 'string' } } } },
      paths: {
        '/pets': {
          get: {
            parameters: [{ name: 'limit', in: 'query', type: 'integer' }],
            responses: { '200': { description: 'ok', schema: { type: 'array', items: { $ref: '#/definitions/Pet' } } } },
          },
          post: {
            parameters: [{ name: 'body', in: 'body', schema: { $ref: '#/definitions/Pet' } }],
            responses: { '201': { description: 'created' } },
          },
        },
      },
    });
    assert.equal(draft.baseUrl, 'https://api.example.com/v2');
    assert.deepEqual(draft.auth, { kind: 'query', name: 'api_key' });
    assert.deepEqual(draft.endpoints[0]!.query, { type: 'object', properties: { limit: { type: 'integer' } } });
    assert.deepEqual(draft.endpoints[0]!.response, { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } });
    assert.deepEqual(draft.endpoints[1]!.requestBody, { type: 'object', properties: { name: { type: 'string' } } });
  });

  it('accepts JSON text, notes a relative server URL, and maps bearer auth', () => {
    const draft = openApiToPartialApiSpec(
      JSON.stringify({
        openapi: '3.1.0',
        servers: [{ url: '/api' }],
        components: { securitySchemes: { token: { type: 'http', scheme: 'bearer' } } },
        paths: { '/me': { get: { responses: { '200': { description: 'ok' } } } } },
      }),
    );
    assert.equal(draft.baseUrl, undefined);
    assert.ok(draft.notes.some((n) => n.includes('not an absolute http(s) URL')));
    assert.deepEqual(draft.auth, { kind: 'bearer' });
    assert.equal(draft.endpoints[0]!.id, 'get_me');
    assert.deepEqual(draft.endpoints[0]!.response, {});
  });

  it('refuses what is not an OpenAPI document, saying why', () => {
    assert.throws(
      () => openApiToPartialApiSpec('openapi: 3.0.0\npaths: {}'),
      (e: unknown) => e instanceof InvalidInputError && /YAML is not parsed/.test(e.message),
    );
    assert.throws(() => openApiToPartialApiSpec([]), /expected a JSON object, got an array/);
    assert.throws(() => openApiToPartialApiSpec({ openapi: '3.0.0' }), /no "paths" object/);
  });

  it('fits a large draft into the prompt budget, listing the rest by method and path', () => {
    const draft = openApiToPartialApiSpec(petstore);
    const text = draftForPrompt(draft, 1200);
    assert.match(text, /more endpoint\(s\), left out for length/);
    assert.match(text, /- POST \/alerts\/\{alertId\}: Create an alert/);
  });
});
