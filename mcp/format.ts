import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { CatalogTool, CycleView, SearchAnswer } from '../app/mcp-calls.ts';

/**
 * What an MCP client reads: catalog tools as MCP tools, and every cycle's state as a tool result —
 * text for the model (what happened, what to do next), structured content for programs.
 */

const MAX_TEXT = 20_000;

function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}… (${text.length - MAX_TEXT} more characters cut)`;
}

function json(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** A JSON Schema as MCP wants it: an object schema, without the draft marker some clients cannot compile. */
function objectSchema(schema: Record<string, unknown>): Record<string, unknown> & { type: 'object' } {
  const { $schema: _drop, ...rest } = schema;
  return { ...rest, type: 'object' };
}

export function catalogToolToMcp(t: CatalogTool): Tool {
  const effect =
    t.sideEffect === 'read' && !t.destructive
      ? 'reads only'
      : `${t.destructive ? 'destructive' : 'changes something'}: each call waits for a person's approval (forge approve <id>) until the tool has earned trust`;
  const reach = t.network.length ? `; reaches ${t.network.join(', ')}` : '; works offline';
  const tool: Tool = {
    name: t.name,
    title: t.name.replace(/_/g, ' '),
    description: `${t.description}\n\n(Forge tool v${t.version}: ${effect}${reach}; runs in Forge's sandbox, metered and audited.)`,
    inputSchema: objectSchema(t.inputSchema),
    annotations: {
      readOnlyHint: t.sideEffect === 'read' && !t.destructive,
      destructiveHint: t.destructive,
      openWorldHint: t.network.length > 0,
    },
    _meta: { 'forge/version': t.version },
  };
  // MCP output schemas are object schemas; a tool returning anything else is described by its text.
  if (t.outputSchema.type === 'object') tool.outputSchema = objectSchema(t.outputSchema);
  return tool;
}

const error = (text: string, structured?: Record<string, unknown>): CallToolResult => ({
  isError: true,
  content: [{ type: 'text', text: clip(text) }],
  ...(structured ? { structuredContent: structured } : {}),
});

const ok = (text: string, structured?: Record<string, unknown>): CallToolResult => ({
  content: [{ type: 'text', text: clip(text) }],
  ...(structured ? { structuredContent: structured } : {}),
});

const resultHint = (workflowId: string) => `get_result with {"id": "${workflowId}"}`;

/**
 * A cycle that is not over: waiting for a person, for a thaw, or still working. For a tool call
 * (`pendingIsError`) this is an error result — the tool's output is not there, and a client that
 * checks the tool's output schema must not take the note for it — but the text says plainly that
 * nothing failed and the call must not be repeated.
 */
function pending(view: Exclude<CycleView, { state: 'done' } | { state: 'failed' }>, what: string, pendingIsError: boolean): CallToolResult {
  const structured = { workflowId: view.workflowId, state: view.state, phase: view.phase, uiUrl: view.uiUrl };
  const again = `Do not call it again: ${what} goes on by itself; fetch the outcome with ${resultHint(view.workflowId)}.`;
  let text: string;
  if (view.state === 'awaiting-approval') {
    const a = view.approval;
    const how =
      a.kind === 'question'
        ? `A person answers it with: forge answer ${a.id} "<answer>" (or declines: forge reject ${a.id}).`
        : `A person approves it with: forge approve ${a.id} (or rejects it: forge reject ${a.id}).`;
    text = `Not done yet: waiting for approval ${a.id} (${a.kind}): ${a.summary}\n${how} ${again}`;
    Object.assign(structured, { approval: a });
  } else if (view.state === 'frozen') {
    text = `Not done yet: Forge is frozen (kill switch), so ${what} waits; it resumes after forge thaw. ${again}`;
  } else {
    text = `Still running (${view.phase}): ${what} was not over within the wait. ${again}`;
  }
  // A client checks structured content against the tool's output schema even on an error result:
  // a tool call's note carries its ids in _meta instead.
  if (pendingIsError) return { ...error(text), _meta: { 'forge/workflowId': view.workflowId, 'forge/state': view.state } };
  return ok(text, structured);
}

/** A tool call's view as the result of calling that tool (directly, or through call_tool). */
export function callResult(view: CycleView): CallToolResult {
  if (view.state === 'failed') return { ...error(`the call failed: ${view.error}`), _meta: { 'forge/workflowId': view.workflowId } };
  if (view.state !== 'done') return pending(view, 'the call', true);
  if (view.kind !== 'call') return cycleResult(view);
  const r = view.result;
  const meta = { 'forge/workflowId': r.workflowId, ...(r.version ? { 'forge/version': r.version } : {}) };
  if (r.status === 'succeeded') {
    const retried = r.retries ? `\n\n(${r.tool} succeeded after ${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}.)` : '';
    return {
      content: [{ type: 'text', text: clip(json(r.output) + retried) }],
      ...(isPlainObject(r.output) ? { structuredContent: r.output } : {}),
      _meta: meta,
    };
  }
  const text =
    r.slip === 'invalid-input'
      ? `${r.reason}. Call ${r.tool} again with input that fits its schema.`
      : r.status === 'not-run'
        ? `${r.tool} did not run: ${r.reason}`
        : `${r.tool}${r.version ? ` v${r.version}` : ''} failed: ${r.reason}${r.retries ? ` (after ${r.retries} retries)` : ''}`;
  return { ...error(text), _meta: meta };
}

/** Any cycle's view as the result of forge_tool, run_task or get_result. */
export function cycleResult(view: CycleView): CallToolResult {
  const base = { workflowId: view.workflowId, uiUrl: view.uiUrl };
  if (view.state === 'failed') return error(`${view.kind} ${view.workflowId} failed: ${view.error}`, { ...base, state: 'failed' });
  if (view.state !== 'done')
    return pending(view, view.kind === 'call' ? 'the call' : view.kind === 'forge' ? 'the forge' : 'the task', false);
  if (view.kind === 'call') return callResult(view);
  if (view.kind === 'forge') {
    const r = view.result;
    if (r.status !== 'registered') return error(`forging failed: ${r.reason}`, { ...base, status: 'failed', reason: r.reason });
    const t = view.tool;
    const text = [
      `Forged ${r.name} v${r.version}, verified in Forge's sandbox and registered${r.note ? ` (${r.note})` : ''}.`,
      t ? `${t.description}\nInput schema: ${json(t.inputSchema)}` : '',
      `It is in your tool list now (tools/list_changed was sent): call ${r.name} directly, or call_tool with {"name": "${r.name}", "arguments": {…}}.`,
    ]
      .filter(Boolean)
      .join('\n');
    return ok(text, {
      ...base,
      status: 'registered',
      tool: { name: r.name, version: r.version, ...(t ? { description: t.description, inputSchema: t.inputSchema } : {}) },
    });
  }
  const r = view.result;
  const calls = r.calls.map((c) => `- ${c.tool}${c.version ? ` v${c.version}` : ''}: ${c.status}${c.reason ? ` (${c.reason})` : ''}`);
  const text = [
    r.answer,
    calls.length ? `\nCalls:\n${calls.join('\n')}` : '',
    r.forged.length ? `Forged: ${r.forged.join(', ')}` : '',
    r.status === 'completed' ? '' : `Task ${r.status}${r.stoppedBy ? ` (${r.stoppedBy})` : ''}.`,
  ]
    .filter(Boolean)
    .join('\n');
  const structured = {
    ...base,
    status: r.status,
    answer: r.answer,
    calls: r.calls.map((c) => ({ tool: c.tool, version: c.version, status: c.status, input: c.input, output: c.output, reason: c.reason })),
    forged: r.forged,
    turns: r.turns,
  };
  return r.status === 'completed' ? ok(text, structured) : error(text, structured);
}

export function searchResult(query: string, answer: SearchAnswer): CallToolResult {
  const d = answer.decision;
  const lines = answer.hits.map(
    (h) =>
      `- ${h.name} v${h.version} — score ${h.score.toFixed(2)} (similarity ${h.similarity.toFixed(2)}; ${h.level}, ${h.successes}/${h.invocations} calls of v${h.version} succeeded; ${h.sideEffect}${h.status === 'active' ? '' : `; ${h.status}: not callable`}): ${h.description}`,
  );
  const next =
    d.action === 'forge' ? 'No tool fits well enough: forge_tool can have one written.' : `Call ${d.tool} directly, or with call_tool.`;
  const text = lines.length
    ? `Tools for "${query}" (best first):\n${lines.join('\n')}\nDiscovery's decision: ${d.action}${d.tool ? ` ${d.tool}` : ''} — ${d.reason}\n${next}`
    : `No catalog tool matches "${query}". forge_tool can have one written.`;
  return ok(text, { decision: d, hits: answer.hits });
}

export { error as errorResult };
