import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { clause, ForgeError } from '../app/errors.ts';
import { type McpBackend, mcpLog, ToolNotOfferedError, type WaitOptions } from '../app/mcp-calls.ts';
import { taskLimitRanges } from '../app/tasks.ts';
import type { CatalogWatch } from './catalog-watch.ts';
import { callResult, catalogToolToMcp, cycleResult, errorResult, searchResult } from './format.ts';

/**
 * One MCP session's server: the active catalog as tools (re-read on every tools/list, so a tool
 * forged a minute ago is there), tools/list_changed when the catalog changes, and five meta-tools
 * for clients that ignore that notification. Every call goes through the app's use cases: a
 * catalog tool runs as a tool call cycle (gate, approval, sandbox, metering, audit), never here.
 */

export const META = {
  search: 'search_tools',
  call: 'call_tool',
  forge: 'forge_tool',
  task: 'run_task',
  result: 'get_result',
} as const;
const metaNames = new Set<string>(Object.values(META));

/**
 * A JSON-RPC error a request handler answers with: the SDK sends its code, message and data as
 * they are. Not the SDK's McpError, whose message already starts "MCP error <code>: ", which the
 * client's McpError prepends again: a client read "MCP error -32602: MCP error -32602: …".
 */
export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** How long a call waits for its result before answering with where it stands (under the common 60 s client timeout). */
const CALL_WAIT_MS = 50_000;

const waitSeconds = (fallback: number) =>
  z
    .number()
    .int()
    .min(0)
    .max(300)
    .default(fallback)
    .describe(
      `seconds to wait for the end before answering with the id to poll (default ${fallback}; clients time a request out after 60 s unless progress resets it)`,
    );

/** A bound on run_task's agent loop, with the range and default `forge run --max-…` has (one schema decides both). */
const bound = (key: keyof ReturnType<typeof taskLimitRanges>, what: string) => {
  const range = taskLimitRanges()[key];
  return z.number().int().min(range.min).max(range.max).optional().describe(`${what} (default ${range.default})`);
};

const metaInputs = {
  [META.search]: z.strictObject({
    query: z.string().trim().min(2).max(500).describe('what you need a tool for, in words'),
    limit: z.number().int().min(1).max(20).default(8).describe('at most this many tools'),
  }),
  [META.call]: z.strictObject({
    name: z.string().min(1).describe('the catalog tool to call (search_tools finds it)'),
    arguments: z.record(z.string(), z.unknown()).default({}).describe("the tool's input, as its input schema says"),
  }),
  [META.forge]: z.strictObject({
    description: z.string().trim().min(10).max(4000).describe('what the new tool must do, its inputs and what it returns, in words'),
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_]{1,62}$/, 'a snake_case name')
      .optional()
      .describe('a snake_case name for it'),
    waitSeconds: waitSeconds(45),
  }),
  [META.task]: z.strictObject({
    task: z.string().trim().min(3).max(4000).describe("the task, in a person's words"),
    sessionId: z.string().optional().describe('continue this conversation of tasks (a slug), or start it'),
    maxTurns: bound('maxTurns', 'at most this many model turns'),
    maxToolCalls: bound('maxToolCalls', 'at most this many tool calls'),
    maxTokens: bound('maxTokens', 'at most this many tokens, in and out, over all its model calls'),
    waitSeconds: waitSeconds(50),
  }),
  [META.result]: z.strictObject({
    id: z.string().min(1).describe('the workflow id a call, forge_tool or run_task answered with'),
    waitSeconds: waitSeconds(30),
  }),
};

const metaDescriptions: Record<string, string> = {
  [META.search]:
    "Search Forge's tool catalog for a need: the best tools with their scores (similarity, success rate, trust level) and discovery's decision (reuse, confirm, or forge a new one). For clients that do not refresh their tool list, call what it finds with call_tool.",
  [META.call]:
    "Call any active catalog tool by name (for clients that do not refresh their tool list). The same as calling the tool directly: Forge's trust gate, a person's approval for a write, the sandbox, metering and the audit log.",
  [META.forge]:
    'Have Forge write a new tool: spec, tests, code, proven in its sandbox, then registered. Answers with the new tool (it joins the tool list at once) or, when it takes longer than waitSeconds, with the forge id for get_result.',
  [META.task]:
    "Give Forge's own agent a whole task: it finds or forges the tools it needs, calls them and answers. Answers with the answer and the calls that produced it, or with the task id for get_result.",
  [META.result]:
    'The outcome of a call, forge or task started earlier (one that waited for an approval, or took longer than its wait), by the id it answered with.',
};

const metaTools: Tool[] = Object.entries(metaInputs).map(([name, schema]) => {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
  return {
    name,
    description: metaDescriptions[name],
    inputSchema: { ...json, type: 'object' },
    annotations: { readOnlyHint: name === META.search || name === META.result, openWorldHint: false },
  };
});

/**
 * What is wrong with a meta-tool's input, in the words a direct call's refusal uses: a key the tool
 * does not take is named with the keys it does (zod alone says "Unrecognized key", naming neither
 * the parameters nor, for call_tool, where the called tool's input goes).
 */
function metaInputIssues(name: string, schema: z.ZodObject, error: z.ZodError): string {
  const issues = error.issues
    .filter((i) => !(i.code === 'unrecognized_keys' && i.path.length === 0))
    .map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`);
  const unknown = error.issues.flatMap((i) => (i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys : []));
  if (unknown.length) {
    const known = Object.keys(schema.shape);
    // call_tool's own input is the called tool's name and its input: the usual slip is that input under another key.
    const where = name === META.call ? `; the called tool's input goes in "arguments": {"name": "<tool>", "arguments": {…}}` : '';
    issues.push(`not a parameter: ${unknown.join(', ')} (the parameters are: ${known.join(', ')})${where}`);
  }
  return issues.join('; ');
}

export function createForgeMcpServer(backend: McpBackend, watch: CatalogWatch, version: string): Server {
  const server = new Server(
    { name: 'forge', title: 'Forge', version },
    {
      capabilities: { tools: { listChanged: true } },
      instructions:
        "Forge's tool catalog: every tool here was forged (or written) and proven in Forge's sandbox, and runs there when called. The list changes while you work (tools/list_changed); if your client does not refresh it, search_tools and call_tool reach every tool. A write waits for a person's approval: the result says so and names the id to poll with get_result.",
    },
  );
  const client = () => server.getClientVersion()?.name ?? 'unknown client';

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const catalog = await backend.tools().catch((err: Error) => {
      throw new ProtocolError(
        ErrorCode.InternalError,
        `Forge's catalog cannot be read: ${clause(err.message)}. Is Forge up? (forge up; forge doctor)`,
      );
    });
    // A catalog tool never shadows a meta-tool (the agent loop's own names are refused at registration already).
    return { tools: [...metaTools, ...catalog.filter((t) => !metaNames.has(t.name)).map(catalogToolToMcp)] };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name } = request.params;
    const args = request.params.arguments ?? {};
    const token = request.params._meta?.progressToken;
    let step = 0;
    const wait = (ms: number): WaitOptions => ({
      waitMs: ms,
      signal: extra.signal,
      onProgress: (phase) => {
        // Progress keeps a client that resets its timeout on progress waiting; others ignore it.
        if (token === undefined) return;
        void extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: ++step, message: phase },
        });
      },
    });
    try {
      if (!metaNames.has(name))
        return callResult(await backend.callTool(name, args, { surface: 'mcp', client: client() }, wait(CALL_WAIT_MS)));
      const schema = metaInputs[name as keyof typeof metaInputs];
      const parsed = schema.safeParse(args);
      if (!parsed.success)
        return errorResult(
          `invalid ${name} input: ${metaInputIssues(name, schema, parsed.error)}. Call it again with input that fits its schema.`,
        );
      const input = parsed.data as Record<string, unknown>;
      switch (name) {
        case META.search: {
          const { query, limit } = input as z.output<(typeof metaInputs)['search_tools']>;
          return searchResult(query, await backend.search(query, limit));
        }
        case META.call: {
          const call = input as z.output<(typeof metaInputs)['call_tool']>;
          if (metaNames.has(call.name)) return errorResult(`${call.name} is one of Forge's meta-tools: call it directly`);
          return callResult(await backend.callTool(call.name, call.arguments, { surface: 'mcp', client: client() }, wait(CALL_WAIT_MS)));
        }
        case META.forge: {
          const ask = input as z.output<(typeof metaInputs)['forge_tool']>;
          return cycleResult(
            await backend.forge({ need: ask.description, ...(ask.name ? { name: ask.name } : {}) }, wait(ask.waitSeconds * 1000)),
          );
        }
        case META.task: {
          const ask = input as z.output<(typeof metaInputs)['run_task']>;
          const limits = {
            ...(ask.maxTurns ? { maxTurns: ask.maxTurns } : {}),
            ...(ask.maxToolCalls ? { maxToolCalls: ask.maxToolCalls } : {}),
            ...(ask.maxTokens ? { maxTokens: ask.maxTokens } : {}),
          };
          return cycleResult(
            await backend.runTask(
              { task: ask.task, ...(ask.sessionId ? { sessionId: ask.sessionId } : {}), ...(Object.keys(limits).length ? { limits } : {}) },
              wait(ask.waitSeconds * 1000),
            ),
          );
        }
        default: {
          const ask = input as z.output<(typeof metaInputs)['get_result']>;
          return cycleResult(await backend.result(ask.id, wait(ask.waitSeconds * 1000)));
        }
      }
    } catch (err) {
      // A name that is no tool of the list is the request's mistake, not a tool's failure: the
      // protocol's own error for it (unknown tool: invalid params). Through call_tool, the name is
      // that tool's input, so it is an error result the model reads, like any other bad input.
      if (err instanceof ToolNotOfferedError && !metaNames.has(name))
        throw new ProtocolError(ErrorCode.InvalidParams, `${err.message}: ${err.fix}`, { tool: name });
      // What a person's CLI would say: the message and the fix. Anything else is logged and summarised.
      if (err instanceof ForgeError) return errorResult(`${err.message}${err.fix ? ` (fix: ${err.fix})` : ''}`);
      mcpLog.error('tool call failed', { tool: name, error: (err as Error).message });
      return errorResult(`Forge could not run ${name}: ${clause((err as Error).message)}. Is Forge up? (forge doctor says what is wrong)`);
    }
  });

  // Only an initialized session hears of changes; its subscription ends with it.
  let unsubscribe: (() => void) | undefined;
  server.oninitialized = () => {
    unsubscribe = watch.subscribe(() => {
      server.sendToolListChanged().catch((err: Error) => mcpLog.debug('tools/list_changed not sent', { error: err.message }));
    });
  };
  server.onclose = () => unsubscribe?.();
  return server;
}
