/**
 * What every forge prompt states: the tool contract, as precisely as the static stage and the
 * sandbox enforce it, and the test suite's. The enforcement is not here (services/sandbox): these
 * texts only tell the model the rules it will be judged by, so they must stay true to them.
 */

/** The tool contract, shared by every step. */
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
9. TypeScript strict mode: the file must type-check with no errors.
10. Forge calls the tool itself with inputs generated from manifest.input (its examples, empty strings and arrays, the longest and largest allowed values, non-ASCII text, whitespace, zero) and, when it has an API spec, with injected faults (429 with Retry-After, 5xx, timeouts, malformed JSON). For every such input return output that fits manifest.output, or throw an Error whose message says what is wrong; a TypeError, a hang or output that breaks the schema fails verification.`;

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
