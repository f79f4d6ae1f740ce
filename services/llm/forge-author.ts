/**
 * The model's side of the forge cycle: spec → API spec → tests → implementation → repair.
 * Each step is one structured call (client.ts), run as one Temporal activity. The
 * system prompts are static, so the prompt cache serves them across steps and tools; what
 * varies goes in the user prompt. Replies are checked beyond their schema where that is
 * cheap (names, exports, imports), as zod refinements on a per-call schema: a violation
 * goes back to the model through llm.structured's one retry, and only then fails with an
 * LlmOutputError (non-retryable LlmOutputInvalid as an activity) saying what was wrong.
 */
import { z } from 'zod';
import { describeError, InvalidInputError } from '../../domain/errors.ts';
import {
  apiSpecReplySchema,
  forgeRequestSchema,
  implementationReplySchema,
  repairReplySchema,
  testsReplySchema,
  toolSpecSchema,
  type ToolSpec,
} from '../../domain/forge.ts';
import { openApiToPartialApiSpec, type PartialApiSpec } from '../../domain/openapi.ts';
import { apiSpecSchema, toolNameSchema, type ApiSpec } from '../../domain/tool.ts';
import { domainAllowed } from '../../runner/ctx.ts';
import type { Llm } from './client.ts';

// ---- names the scenario files and the metering table key on ----

export const FORGE_PURPOSES = {
  spec: 'forge.spec',
  api: 'forge.api',
  tests: 'forge.tests',
  implementation: 'forge.implementation',
  repair: 'forge.repair',
} as const;

export const FORGE_TOOLS = {
  spec: 'submit_spec',
  api: 'submit_api_spec',
  tests: 'submit_tests',
  implementation: 'submit_implementation',
  repair: 'submit_repair',
} as const;

// ---- the static prompts ----

/** The tool contract, as precisely as the static stage and the sandbox enforce it. Shared by every step. */
export const TOOL_CONTRACT = `THE FORGE TOOL CONTRACT
A tool is one TypeScript ES module, tool.ts, run by Node.js 20 inside a sandbox container (read-only filesystem, non-root, no network except what ctx allows, memory/CPU/time limits). Its shape is exactly:

  import { z } from 'zod';
  import type { ToolContext } from '@forge/tool';

  export const manifest = {
    name: 'snake_case_name',        // a string literal, equal to the spec's name
    description: 'One paragraph.',  // a string literal
    sideEffect: 'read',             // 'read' or 'write', as in the spec
    destructive: false,             // as in the spec
    permissions: { network: ['api.example.com'], env: ['EXAMPLE_API_KEY'] }, // array literals of string literals ([] when none)
    input: z.object({ ... }),       // zod schema of run's input, one field per spec parameter
    output: z.object({ ... }),      // zod schema of what run returns
  };

  export async function run(input: z.output<typeof manifest.input>, ctx: ToolContext): Promise<z.output<typeof manifest.output>> { ... }

The runner validates the input with manifest.input before calling run, and the output with manifest.output after.

ToolContext (all I/O goes through it; nothing else is available):
- ctx.fetch(url, init?): Promise<Response>, the standard fetch, but it only reaches hosts listed in permissions.network (an exact host, or *.example.com for sub-domains); any other host rejects with a PermissionDenied error. Redirects are not followed.
- ctx.env: Readonly<Record<string, string | undefined>>: only the variables listed in permissions.env.
- ctx.log.debug/info/warn/error(message, fields?): the tool's log.
- ctx.signal: AbortSignal, aborted when the job's time budget runs out.

Rules (a static check, then the sandbox, enforce them; breaking one fails verification):
1. Imports: tool.ts imports only 'zod' and, type-only, '@forge/tool' (import type { ToolContext } from '@forge/tool'). No other package, no node: built-in, no require, no dynamic import().
2. Never touch ambient authority: no global fetch, XMLHttpRequest, WebSocket, process (process.env included), globalThis/global/window, eval, new Function or .constructor tricks, WebAssembly, child_process, worker_threads, vm, fs, net, http, https, dns, os.
3. Secrets come only from ctx.env, only variables declared in permissions.env; never hard-code a key. When a required variable is missing, throw an Error naming the variable before making any request.
4. Network: every URL the tool builds uses a host declared in permissions.network; every URL literal in tool.ts must use a declared host.
5. HTTP robustness: retry 429 and 5xx responses, at most 3 attempts in all; wait the Retry-After header's seconds when present (capped at a few seconds), else back off exponentially (e.g. 250 ms, then 500 ms); sleep with a timer that ctx.signal cancels. Give each request a timeout (signal: AbortSignal.timeout(10_000)) and let its TimeoutError propagate. After the last attempt throw an Error naming the status and the number of attempts.
6. Validate every response with a zod schema of the fields the tool uses. Invalid JSON: throw an Error whose message contains "malformed JSON". Wrong shape: throw an Error whose message contains "unexpected response" and the zod issue paths.
7. Errors are structured and never swallowed: throw Error objects whose messages say what failed and what to do about it; never catch and ignore, never return partial data silently.
8. No state between calls, no timers left running, nothing written anywhere except through a declared API.
9. TypeScript strict mode: the file must type-check with no errors.`;

export const TESTS_CONTRACT = `THE TEST SUITE
tool.test.ts runs with node:test inside the sandbox, with no network at all. It may import only 'node:test', 'node:assert/strict' (or 'node:assert'), '@forge/testkit', 'zod', type-only '@forge/tool', and './tool.ts' (write the .ts extension).

@forge/testkit exports testContext(options?), which returns a ToolContext for one test: the production permission checks, with ctx.fetch answered in-process by a mock of the API described by api-spec.json.
  options.env?: Record<string, string>: the variables the job gets (only those in the manifest's permissions.env reach the tool)
  options.faults?: Fault[]: injected failures, taken in order by matching requests
  options.routes?: Record<string, { status?, headers?, body? } | ((req) => reply)>: custom replies, keyed by endpoint id or 'METHOD /path'
  options.timeoutMs?: number: abort ctx.signal after this long
  Fault = { kind, endpoint?: endpoint id or 'METHOD /path', times?: how many requests get it (default: every one), status?, retryAfter?, afterMs? } where kind is
    'rate_limit': HTTP 429 with Retry-After: retryAfter seconds (default 1; use retryAfter: 0 to keep tests fast)
    'server_error': HTTP status (default 503)
    'timeout': the request hangs afterMs (default 1000; use 50) and then rejects with an Error whose name is 'TimeoutError'
    'malformed_json': HTTP 200 with a truncated JSON body
    'wrong_types': HTTP 200 with the example's shape but every leaf of the wrong type
  Without a fault or route, a request to a spec endpoint gets HTTP 200 with the endpoint's example (or a body synthesised from its response schema). Auth is checked as api-spec.json declares it: HTTP 401 when the secret is missing or not sent. Unknown paths get 404.
  The returned ctx also has: calls (each { method, url, headers, body?, endpoint?, status: number | null, fault? }, in order), denied (fetches the permission check refused), logs (what the tool logged), abort(reason?).

Write tests BEFORE the implementation exists, from the spec and the API spec alone:
- happy path: call run(input, ctx) and assert the exact output derived from the API example (assert.deepEqual);
- the request: the right endpoint, query parameters and auth (inspect ctx.calls);
- edge cases: boundary and empty inputs, optional parameters, unicode;
- errors: invalid input is rejected by manifest.input.safeParse (run receives already-validated input); a missing secret rejects before any request (ctx.calls.length === 0);
- for a tool that calls an API, one test per fault: rate_limit once then success (retryAfter: 0; the statuses in ctx.calls are [429, 200]); repeated server_error rejects after exactly 3 requests; timeout (afterMs: 50) rejects with err.name === 'TimeoutError'; malformed_json rejects with /malformed JSON/; wrong_types rejects with /unexpected response/.
Pass complete inputs to run (defaults are not applied when calling run directly). Each test finishes in well under a second. No test.skip or test.todo: a skipped test fails verification. Use assert.rejects with a RegExp matching the error messages the spec promises.`;

export const SPEC_SYSTEM = `You design tools for Forge, an agent that writes, tests and registers its own tools. Given a user's need, call submit_spec with the tool's specification. Later steps write the tests and the implementation from it, so it must be precise and complete.

- name: snake_case. When a name is requested, use exactly that name.
- description: one paragraph saying what the tool does, for discovery by search.
- docstring: usage notes: each parameter, the return value, every error the tool raises (with the words its message will contain) and edge cases.
- parameters: the input fields (JSON types); required false only when there is a sensible default, stated in the description.
- returns: the output's type and fields.
- sideEffect: 'read' when a call changes nothing anywhere; 'write' when it creates, changes or deletes anything (even on a remote service). destructive: true only when a call can delete or overwrite data (and then sideEffect is 'write').
- permissions: network: the API host names the tool must reach (exact hosts such as api.example.com; nothing it does not need); env: the UPPER_SNAKE variables holding its secrets or configuration. Both empty when the tool computes locally.
Prefer one focused tool over a general one. Prefer free, well-known, stable HTTP APIs, and computing locally when no API is needed.

${TOOL_CONTRACT}`;

export const API_SYSTEM = `You reverse-engineer HTTP APIs for Forge, an agent that writes its own tools. Given a tool's spec and, when available, API documentation or a draft derived from an OpenAPI document, call submit_api_spec.

- needsApi: false when the tool needs no HTTP API at all (it computes locally); then omit apiSpec.
- apiSpec.baseUrl: the API's base URL; its host must be one of the spec's permissions.network hosts.
- apiSpec.auth: kind 'none', 'bearer' (Authorization: Bearer), 'header' (name = the header), 'query' (name = the query parameter) or 'basic'; envVar = the spec's permissions.env variable that holds the secret (required unless kind is 'none').
- apiSpec.endpoints: only the endpoints the tool calls. For each: a unique id, method, path relative to baseUrl (with {param} placeholders), a description, safeRead (true only when one real call is harmless: a GET that changes nothing and costs nothing notable), the query parameters as one JSON Schema object, the JSON request body schema, the response JSON Schema (the fields the tool reads, with their types and which are required), a realistic example response (the mock API serves it to the tests, so make its values concrete and consistent), and the error statuses with their meaning (include 429 when the API rate-limits).
When a draft from an OpenAPI document is given, keep what is right in it, drop endpoints the tool does not need, and fill in what it lacks. Use only facts from the documentation or well-established knowledge of the API; never invent endpoints.

${TOOL_CONTRACT}`;

export const TESTS_SYSTEM = `You write test suites for Forge's tools, before their implementation exists (test-driven). Given a tool's spec and API spec, call submit_tests with the complete tool.test.ts. The implementation will be written to pass these tests, so they define the behaviour: make them specific, deterministic and fast, and make them test what the spec promises, not an implementation detail.

${TESTS_CONTRACT}

The implementation the tests will run against follows this contract:

${TOOL_CONTRACT}`;

export const IMPLEMENTATION_SYSTEM = `You implement Forge's tools. Given a tool's spec, its API spec and its test suite, call submit_implementation with the complete tool.ts that passes every test and follows the contract exactly. Read the tests closely: the error messages they match are part of the specification. Write small functions, comments that say why, and no dead code.

${TOOL_CONTRACT}

The tests that will run against it:

${TESTS_CONTRACT}`;

export const REPAIR_SYSTEM = `You repair Forge's tools. A tool failed verification: the static check (compile, type-check, contract rules) or its own test suite in the sandbox. Given the spec, the API spec, the tests, the current tool.ts and the verification report, find the root cause and call submit_repair with a one- or two-sentence diagnosis and the complete corrected tool.ts.

- Fix the implementation, never the tests: the tests are the specification and cannot change.
- Address every finding and failing test in the report; keep whatever already passes working.
- Findings give file:line:column, the rule and the offending line; failing tests give the assertion message.
- Return the whole file, not a diff.

${TOOL_CONTRACT}

${TESTS_CONTRACT}`;

// ---- cheap checks on replies, beyond their schemas ----

/** Static import/export specifiers, and whether each is type-only. A regex is enough: the static stage does the real parse. */
export function importsOf(source: string): { specifier: string; typeOnly: boolean }[] {
  const re = /^\s*(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  return [...source.matchAll(re)].map((m) => ({ specifier: m[2]!, typeOnly: Boolean(m[1]) }));
}

/** The string value of `key: '...'` inside `export const manifest = {`, without running anything. */
function manifestField(source: string, key: string): string | undefined {
  const start = source.search(/export\s+const\s+manifest\b/);
  if (start < 0) return undefined;
  const m = new RegExp(`\\b${key}\\s*:\\s*(['"\`])([^'"\`]*)\\1`).exec(source.slice(start));
  return m?.[2];
}

/** What is wrong with a tool.ts for this spec, in words the model can act on; [] when nothing cheap to see is. */
export function toolSourceProblems(source: string, spec: Pick<ToolSpec, 'name' | 'sideEffect'>): string[] {
  const problems: string[] = [];
  if (!/export\s+const\s+manifest\b/.test(source)) {
    problems.push('tool.ts must `export const manifest = { name, description, sideEffect, destructive, permissions, input, output }`');
  } else {
    const name = manifestField(source, 'name');
    if (name === undefined) problems.push(`manifest.name must be the string literal '${spec.name}'`);
    else if (name !== spec.name) problems.push(`manifest.name is '${name}' but the spec names the tool '${spec.name}': use '${spec.name}'`);
    const sideEffect = manifestField(source, 'sideEffect');
    if (sideEffect !== undefined && sideEffect !== spec.sideEffect) {
      problems.push(`manifest.sideEffect is '${sideEffect}' but the spec says '${spec.sideEffect}'`);
    }
  }
  if (!/export\s+(?:async\s+)?function\s+run\s*\(|export\s+const\s+run\s*=/.test(source)) {
    problems.push('tool.ts must `export async function run(input, ctx)`');
  }
  for (const { specifier, typeOnly } of importsOf(source)) {
    if (specifier === 'zod') continue;
    if (specifier === '@forge/tool') {
      if (!typeOnly) problems.push("import '@forge/tool' type-only: `import type { ToolContext } from '@forge/tool'`");
      continue;
    }
    problems.push(`tool.ts imports '${specifier}': a tool may import only 'zod' and, type-only, '@forge/tool'; do all I/O through ctx`);
  }
  return problems;
}

const TEST_IMPORTS = new Set(['node:test', 'node:assert', 'node:assert/strict', '@forge/testkit', '@forge/tool', 'zod', './tool.ts']);

/** What is wrong with a tool.test.ts, in words the model can act on. */
export function testsSourceProblems(tests: string): string[] {
  const problems: string[] = [];
  const specifiers = importsOf(tests).map((i) => i.specifier);
  for (const s of specifiers) {
    if (TEST_IMPORTS.has(s)) continue;
    const hint = s === './tool' || s === './tool.js' ? " (write './tool.ts')" : '';
    problems.push(`tool.test.ts imports '${s}'${hint}: tests may import only ${[...TEST_IMPORTS].map((x) => `'${x}'`).join(', ')}`);
  }
  if (!specifiers.includes('./tool.ts')) problems.push("tool.test.ts must import the tool from './tool.ts'");
  if (!specifiers.includes('node:test')) problems.push("tool.test.ts must use node:test: import { test } from 'node:test'");
  if (!/\b(?:test|it)\s*\(/.test(tests)) problems.push('tool.test.ts defines no test: call test(name, async () => { ... })');
  if (/\b(?:test|it|describe)\.(?:skip|todo)\b|\{\s*(?:skip|todo)\s*:\s*true/.test(tests)) {
    problems.push('tool.test.ts skips tests: skipped tests fail verification, so every test must run');
  }
  return problems;
}

/** The spec's own consistency, and the requested name. */
export function specProblems(spec: ToolSpec, requestedName?: string): string[] {
  const problems: string[] = [];
  if (requestedName && spec.name !== requestedName) {
    problems.push(`name is '${spec.name}' but the tool was requested as '${requestedName}': use exactly '${requestedName}'`);
  }
  if (spec.destructive && spec.sideEffect !== 'write') problems.push("destructive is true, so sideEffect must be 'write'");
  const seen = new Set<string>();
  for (const p of spec.parameters) {
    if (seen.has(p.name)) problems.push(`parameter '${p.name}' is listed twice`);
    seen.add(p.name);
  }
  return problems;
}

/** The API spec against the tool spec: the host must be declared and the secret must be a declared variable. */
export function apiSpecProblems(apiSpec: ApiSpec, spec: Pick<ToolSpec, 'permissions'>): string[] {
  const problems: string[] = [];
  const host = new URL(apiSpec.baseUrl).hostname;
  const network = spec.permissions.network;
  if (!domainAllowed(host, network)) {
    problems.push(`baseUrl host '${host}' is not among the spec's permissions.network (${network.join(', ') || 'none'}): use a declared host`);
  }
  const { kind, envVar } = apiSpec.auth;
  if (kind !== 'none' && !envVar) problems.push(`auth.kind is '${kind}' but auth.envVar is missing: name the variable holding the secret (one of ${spec.permissions.env.join(', ') || 'none declared'})`);
  if (kind !== 'none' && envVar && !spec.permissions.env.includes(envVar)) {
    problems.push(`auth.envVar '${envVar}' is not among the spec's permissions.env (${spec.permissions.env.join(', ') || 'none'}): use a declared variable`);
  }
  const ids = apiSpec.endpoints.map((e) => e.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) problems.push(`endpoint id '${dup}' is used twice: ids must be unique`);
  return problems;
}

/** Adds each problem as an issue on `path`, so the retry tells the model exactly what to change. */
function report(ctx: z.RefinementCtx, problems: string[], path: (string | number)[]): void {
  for (const message of problems) ctx.addIssue({ code: 'custom', message, path });
}

// Per-call reply schemas: the base schema (what the model sees as JSON Schema) plus the checks above.

export function specReplySchema(requestedName?: string): z.ZodType<ToolSpec> {
  return toolSpecSchema.superRefine((spec, ctx) => report(ctx, specProblems(spec, requestedName), []));
}

export function apiReplySchema(spec: ToolSpec) {
  return apiSpecReplySchema.superRefine((reply, ctx) => {
    if (!reply.needsApi) return;
    if (!reply.apiSpec) return report(ctx, ['needsApi is true, so apiSpec is required'], ['apiSpec']);
    report(ctx, apiSpecProblems(reply.apiSpec, spec), ['apiSpec']);
  });
}

export const testsReplyCheckedSchema = testsReplySchema.superRefine((reply, ctx) => report(ctx, testsSourceProblems(reply.tests), ['tests']));

export function implementationReplyCheckedSchema(spec: ToolSpec) {
  return implementationReplySchema.superRefine((reply, ctx) => report(ctx, toolSourceProblems(reply.source, spec), ['source']));
}

export function repairReplyCheckedSchema(spec: ToolSpec) {
  return repairReplySchema.superRefine((reply, ctx) => report(ctx, toolSourceProblems(reply.source, spec), ['source']));
}

// ---- activity inputs (checked: they cross the workflow boundary) ----

const maybeApiSpec = apiSpecSchema.nullable();

export const writeSpecInputSchema = z.object({ need: forgeRequestSchema.shape.need, name: toolNameSchema.optional() });
export const extractApiSpecInputSchema = z.object({
  spec: toolSpecSchema,
  apiDocs: forgeRequestSchema.shape.apiDocs,
  openApi: z.unknown().optional(),
});
export const writeTestsInputSchema = z.object({ spec: toolSpecSchema, apiSpec: maybeApiSpec });
export const writeImplementationInputSchema = writeTestsInputSchema.extend({ tests: z.string().min(1) });
export const repairInputSchema = writeImplementationInputSchema.extend({
  source: z.string().min(1),
  failures: z.string().min(1).max(100_000),
  attempt: z.number().int().min(1),
});

export type WriteSpecInput = z.input<typeof writeSpecInputSchema>;
export type ExtractApiSpecInput = z.input<typeof extractApiSpecInputSchema>;
export type WriteTestsInput = { spec: ToolSpec; apiSpec: ApiSpec | null };
export type WriteImplementationInput = WriteTestsInput & { tests: string };
export type RepairInput = WriteImplementationInput & { source: string; failures: string; attempt: number };

// ---- prompts (the dynamic part) ----

/** Fenced, so code in a prompt never reads as instructions; the fence grows if the text holds one. */
function fenced(lang: string, text: string): string {
  const fence = '`'.repeat(Math.max(3, ...[...text.matchAll(/`{3,}/g)].map((m) => m[0].length + 1)));
  return `${fence}${lang}\n${text.replace(/\n$/, '')}\n${fence}`;
}

const json = (v: unknown) => fenced('json', JSON.stringify(v, null, 2));

/** Every prompt after the spec starts with `Tool: <name>`, which scenario files match on. */
function toolHeader(spec: ToolSpec, apiSpec: ApiSpec | null): string {
  return [
    `Tool: ${spec.name}`,
    '',
    'Spec:',
    json(spec),
    '',
    apiSpec ? `API spec (api-spec.json; the tests' mock API serves it):\n${json(apiSpec)}` : 'API spec: none (the tool calls no HTTP API; permissions.network stays empty).',
  ].join('\n');
}

export function specPrompt(input: { need: string; name?: string }): string {
  return [
    "The user's need:",
    '<need>',
    input.need.trim(),
    '</need>',
    '',
    input.name ? `Requested name: ${input.name}` : 'Requested name: none (choose a snake_case name).',
  ].join('\n');
}

/** OpenAPI drafts of big APIs are cut to fit: endpoints beyond the budget are listed by method and path only. */
const MAX_DRAFT_CHARS = 60_000;
const MAX_DOCS_CHARS = 120_000;

export function draftForPrompt(draft: PartialApiSpec, maxChars = MAX_DRAFT_CHARS): string {
  const kept: PartialApiSpec['endpoints'] = [];
  const listed: string[] = [];
  let size = JSON.stringify({ ...draft, endpoints: [] }).length;
  for (const e of draft.endpoints) {
    const n = JSON.stringify(e).length;
    if (size + n <= maxChars) {
      kept.push(e);
      size += n;
    } else listed.push(`${e.method} ${e.path}${e.description ? `: ${e.description.slice(0, 100)}` : ''}`);
  }
  const text = json({ ...draft, endpoints: kept });
  return listed.length ? `${text}\n${listed.length} more endpoint(s), left out for length:\n${listed.map((l) => `- ${l}`).join('\n')}` : text;
}

export function apiPrompt(input: { spec: ToolSpec; apiDocs?: string; draft?: PartialApiSpec }): string {
  const parts = [`Tool: ${input.spec.name}`, '', 'Spec:', json(input.spec)];
  if (input.draft) {
    parts.push('', 'Draft derived deterministically from the OpenAPI document (check it; keep only what the tool needs; auth.envVar must be set from the spec):', draftForPrompt(input.draft));
  }
  if (input.apiDocs) {
    const docs = input.apiDocs.length > MAX_DOCS_CHARS ? `${input.apiDocs.slice(0, MAX_DOCS_CHARS)}\n… (${input.apiDocs.length - MAX_DOCS_CHARS} more characters left out)` : input.apiDocs;
    parts.push('', 'API documentation:', fenced('text', docs));
  }
  if (!input.draft && !input.apiDocs) parts.push('', 'No documentation was given: rely on well-established knowledge of the API, or answer needsApi false if the tool needs none.');
  return parts.join('\n');
}

export function testsPrompt(input: WriteTestsInput): string {
  return `${toolHeader(input.spec, input.apiSpec)}\n\nWrite tool.test.ts for this tool.`;
}

export function implementationPrompt(input: WriteImplementationInput): string {
  return [toolHeader(input.spec, input.apiSpec), '', 'Tests (tool.test.ts), which the implementation must pass:', fenced('ts', input.tests), '', 'Write tool.ts.'].join('\n');
}

export function repairPrompt(input: RepairInput): string {
  return [
    toolHeader(input.spec, input.apiSpec),
    '',
    'Tests (tool.test.ts; they stay as they are):',
    fenced('ts', input.tests),
    '',
    `Current tool.ts (repair attempt ${input.attempt}):`,
    fenced('ts', input.source),
    '',
    'Verification report:',
    fenced('text', input.failures),
    '',
    'Diagnose the failure and return the corrected tool.ts.',
  ].join('\n');
}

// ---- the activities ----

/** Generated sources are long; the default 4096 output tokens would cut them off. */
const CODE_MAX_TOKENS = 16_000;

/** The model's side of each forge step; inputs are parsed by the activity layer. */
export function createForgeAuthor(llm: Llm) {
  return {
    async writeSpec({ need, name }: { need: string; name?: string }): Promise<ToolSpec> {
      const { value } = await llm.structured({
        purpose: FORGE_PURPOSES.spec,
        system: SPEC_SYSTEM,
        prompt: specPrompt({ need, name }),
        schema: specReplySchema(name),
        toolName: FORGE_TOOLS.spec,
        toolDescription: "Submit the new tool's specification.",
        maxTokens: 4096,
      });
      return value;
    },

    async extractApiSpec({ spec, apiDocs, openApi }: { spec: ToolSpec; apiDocs?: string; openApi?: unknown }): Promise<ApiSpec | null> {
      let draft: PartialApiSpec | undefined;
      if (openApi !== undefined && openApi !== null) {
        try {
          draft = openApiToPartialApiSpec(openApi);
        } catch (err) {
          if (err instanceof InvalidInputError) throw err;
          throw new Error(`could not read the OpenAPI document: ${describeError(err)}`, { cause: err });
        }
      }
      const { value } = await llm.structured({
        purpose: FORGE_PURPOSES.api,
        system: API_SYSTEM,
        prompt: apiPrompt({ spec, apiDocs, draft }),
        schema: apiReplySchema(spec),
        toolName: FORGE_TOOLS.api,
        toolDescription: 'Submit the API the tool calls, or needsApi false when it calls none.',
        maxTokens: 8192,
      });
      return value.needsApi && value.apiSpec ? value.apiSpec : null;
    },

    async writeTests(parsed: WriteTestsInput): Promise<{ tests: string }> {
      const { value } = await llm.structured({
        purpose: FORGE_PURPOSES.tests,
        system: TESTS_SYSTEM,
        prompt: testsPrompt(parsed),
        schema: testsReplyCheckedSchema,
        toolName: FORGE_TOOLS.tests,
        toolDescription: 'Submit the complete tool.test.ts.',
        maxTokens: CODE_MAX_TOKENS,
      });
      return { tests: value.tests };
    },

    async writeImplementation(parsed: WriteImplementationInput): Promise<{ source: string }> {
      const { value } = await llm.structured({
        purpose: FORGE_PURPOSES.implementation,
        system: IMPLEMENTATION_SYSTEM,
        prompt: implementationPrompt(parsed),
        schema: implementationReplyCheckedSchema(parsed.spec),
        toolName: FORGE_TOOLS.implementation,
        toolDescription: 'Submit the complete tool.ts.',
        maxTokens: CODE_MAX_TOKENS,
      });
      return { source: value.source };
    },

    async repairImplementation(parsed: RepairInput): Promise<{ source: string; diagnosis: string }> {
      const { value } = await llm.structured({
        purpose: FORGE_PURPOSES.repair,
        system: REPAIR_SYSTEM,
        prompt: repairPrompt(parsed),
        schema: repairReplyCheckedSchema(parsed.spec),
        toolName: FORGE_TOOLS.repair,
        toolDescription: 'Submit the diagnosis and the complete corrected tool.ts.',
        maxTokens: CODE_MAX_TOKENS,
      });
      return { source: value.source, diagnosis: value.diagnosis };
    },
  };
}

export type ForgeAuthor = ReturnType<typeof createForgeAuthor>;
