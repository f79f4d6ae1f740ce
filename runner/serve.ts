import type { Readable, Writable } from 'node:stream';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, type CallToolResult, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Permissions, SideEffect } from '../domain/tool.ts';
import { callTool } from './call.ts';
import type { LoadedTool } from './tool-module.ts';

/**
 * Serves one tool as an MCP server over stdio, with the low-level Server so the
 * JSON schemas are exactly the tool's own (z.toJSONSchema), and calls go through
 * the same validate → run → validate path as `call`.
 */
export interface ServeOptions {
  stdin: Readable;
  stdout: Writable;
  env: Record<string, string | undefined>;
  permissions?: Permissions;
  sideEffect?: SideEffect;
  timeoutMs: number;
}

type JsonSchema = Record<string, unknown>;

/** The tool's schemas come from its own zod copy; zod v4's toJSONSchema reads the shared `_zod` internals, so it accepts them. */
export function toJsonSchema(schema: unknown, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema as z.ZodType, { io, unrepresentable: 'any' }) as JsonSchema;
  delete json.$schema;
  return json;
}

export function describeTool(tool: LoadedTool): Tool {
  const inputSchema = toJsonSchema(tool.input, 'input');
  const outputSchema = toJsonSchema(tool.output, 'output');
  return {
    name: tool.name,
    description: tool.description,
    // MCP requires object schemas at the top level; a tool whose output is not an object
    // still works, it just does not advertise an outputSchema (clients read the text).
    inputSchema: { ...inputSchema, type: 'object' } as Tool['inputSchema'],
    ...(outputSchema.type === 'object' ? { outputSchema: outputSchema as Tool['outputSchema'] } : {}),
  };
}

export async function handleCall(tool: LoadedTool, args: unknown, opts: ServeOptions, advertisesOutput: boolean): Promise<CallToolResult> {
  const result = await callTool(tool, args ?? {}, {
    env: opts.env,
    permissions: opts.permissions,
    sideEffect: opts.sideEffect,
    timeoutMs: opts.timeoutMs,
  });
  if (!result.ok) {
    return { isError: true, content: [{ type: 'text', text: JSON.stringify({ ...result.error, logs: result.logs }) }] };
  }
  return {
    content: [{ type: 'text', text: JSON.stringify(result.output) }],
    ...(advertisesOutput ? { structuredContent: result.output as Record<string, unknown> } : {}),
  };
}

export async function serveTool(tool: LoadedTool, opts: ServeOptions): Promise<void> {
  const descriptor = describeTool(tool);
  const server = new Server({ name: `forge-tool-${tool.name}`, version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [descriptor] }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    if (req.params.name !== tool.name) {
      return {
        isError: true,
        content: [
          {
            type: 'text',
            text: JSON.stringify({ code: 'TOOL_UNKNOWN', message: `this server serves only ${tool.name}, not ${req.params.name}` }),
          },
        ],
      };
    }
    return handleCall(tool, req.params.arguments, opts, descriptor.outputSchema !== undefined);
  });
  const closed = new Promise<void>((resolve) => {
    server.onclose = () => resolve();
    // The transport does not notice stdin closing by itself: the client hanging up ends the server.
    opts.stdin.on('end', () => void server.close());
  });
  await server.connect(new StdioServerTransport(opts.stdin, opts.stdout));
  await closed;
}
