import { META_TOOLS, type OfferedTool } from '../../domain/agent.ts';
import { ToolMissingError } from '../../domain/errors.ts';
import { evaluationDue } from '../../domain/quality.ts';
import { decide } from '../../domain/ranking.ts';
import type { Discovery, ToolGate } from '../../domain/tool-call.ts';
import { inputProblem } from '../../domain/tool-input.ts';
import { approvalNeeded, statusForLevel, type TrustLevel } from '../../domain/trust.ts';
import { harness } from '../../harness/index.ts';
import type { Registry } from './registry.ts';

const isMetaTool = (name: string) => (Object.values(META_TOOLS) as string[]).includes(name);

/**
 * A task's dealings with the catalog: discovery (hybrid search + the reuse/confirm/forge decision),
 * the trust gate (which calls wait for a person), and metering the call.
 */
export interface ImproveTrigger {
  trigger: 'evaluator' | 'degraded';
  reason: string;
}

export function createToolCalls(deps: { registry: Registry }) {
  const { registry } = deps;

  /**
   * Whether this call should start the tool's improve cycle: the trust ladder just quarantined it,
   * or the evaluator (every N calls of the current version) reads it below the rewrite threshold.
   */
  async function improveTrigger(tool: string, quarantined: boolean): Promise<ImproveTrigger | undefined> {
    const score = await registry.scoreTool(tool);
    if (score.pinned || score.status === 'archived') return undefined;
    if (quarantined) return { trigger: 'degraded', reason: `the trust ladder quarantined it: ${score.reason}` };
    if (evaluationDue(score.totalCalls, harness.policy.quality) && score.verdict === 'rewrite')
      return { trigger: 'evaluator', reason: score.reason };
    return undefined;
  }

  return {
    /**
     * The no-model decision: reuse, confirm or forge. `args`, when a planner extracted them, are
     * checked against each candidate's input schema.
     */
    async discoverTool(input: { query: string; args?: Record<string, unknown> }): Promise<Discovery> {
      const hits = await registry.search(input.query, { limit: harness.policy.retrieval.candidates });
      return {
        decision: decide(
          hits.map((h) => ({
            name: h.name,
            similarity: h.similarity,
            invocations: h.invocations,
            successes: h.successes,
            inputSchema: h.inputSchema,
            status: h.status,
            // a request for a change never reuses a tool that only reads, or makes another change
            intentFit: h.intentFit,
            // and ranks a tool that can take the request's values (a host, a URL, a date) first
            valueFit: h.valueFit,
            sideEffect: h.sideEffect,
            actions: h.actions,
          })),
          {
            policy: harness.policy.ranking,
            ...(input.args ? { args: input.args } : {}),
            ...(hits[0] ? { intent: hits[0].intent } : {}),
          },
        ),
        candidates: hits.map((h) => ({ name: h.name, similarity: h.similarity, score: h.score, level: h.level })),
      };
    },

    /**
     * The catalog tools an agent turn is offered for a request: the top hits of the same search,
     * re-ranked, active ones only, down to a similarity floor, never the whole catalog.
     */
    async offerTools(input: { query: string }): Promise<{ tools: OfferedTool[]; considered: Discovery['candidates'] }> {
      const hits = await registry.search(input.query, { limit: harness.policy.retrieval.candidates });
      const offered = hits.filter((h) => h.status === 'active' && h.similarity >= harness.policy.retrieval.offerAt && !isMetaTool(h.name));
      return {
        tools: offered.map((h) => ({ name: h.name, version: h.version, description: h.description, inputSchema: h.inputSchema })),
        considered: hits.map((h) => ({ name: h.name, similarity: h.similarity, score: h.score, level: h.level })),
      };
    },

    /** One named tool as an agent turn is offered it (a tool just forged, or one the model searched for). */
    async describeTool(input: { name: string }): Promise<OfferedTool> {
      const current = await registry.getCurrent(input.name);
      if (!current) throw new ToolMissingError(`no current version of ${input.name} in the registry`);
      const m = current.manifest;
      return { name: m.name, version: current.version, description: m.description, inputSchema: m.inputSchema };
    },

    async toolGate(input: { name: string; operation?: string; input?: unknown }): Promise<ToolGate> {
      const current = await registry.getCurrent(input.name);
      if (!current) throw new ToolMissingError(`no current version of ${input.name} in the registry`);
      const stats = await registry.stats(input.name);
      const m = current.manifest;
      return {
        name: m.name,
        version: current.version,
        description: m.description,
        inputSchema: m.inputSchema,
        sideEffect: m.sideEffect,
        destructive: m.destructive,
        level: stats.level,
        approval: approvalNeeded({
          level: stats.level,
          sideEffect: m.sideEffect,
          destructive: m.destructive,
          successfulRunsOfOperation: stats.successfulRunsByOperation[input.operation ?? 'run'] ?? 0,
          status: current.status,
        }),
        ...('input' in input ? { inputProblem: inputProblem(m.name, m.inputSchema, input.input) } : {}),
      };
    },

    async recordToolCall(input: {
      workflowId: string;
      /** the call's place in the task (turn and position), when a task makes several */
      callId?: string;
      tool: string;
      version: number;
      input: unknown;
      output?: unknown;
      success: boolean;
      error?: string;
      latencyMs: number;
      reasoning: string;
      task: string;
      /** the input did not fit the declared schema (judged on the host, domain/tool-input.ts): the caller's mistake, not the tool's failure */
      inputRefused?: boolean;
      /** a call a surface made directly (an MCP client), not a task's model: kept in the audit log's task context */
      source?: { surface: 'mcp'; client: string };
    }): Promise<{ level: TrustLevel; quarantined: boolean; improve?: ImproveTrigger }> {
      // One key per call: a task's loop may call the same tool several times.
      const key = `${input.workflowId}:call:${input.callId ?? input.tool}`;
      // A model that keeps sending input the schema refuses must not quarantine a sound tool: such a
      // call is audited (as refused_call) but is no invocation, so it never moves the trust ladder.
      if (!input.inputRefused)
        await registry.recordInvocation({
          idempotencyKey: key,
          tool: input.tool,
          version: input.version,
          input: input.input,
          output: input.output,
          latencyMs: Math.round(input.latencyMs),
          success: input.success,
          error: input.error,
          workflowId: input.workflowId,
        });
      await registry.recordAudit({
        idempotencyKey: key,
        kind: input.inputRefused ? 'refused_call' : 'tool_call',
        tool: input.tool,
        version: input.version,
        input: input.input,
        output: input.success ? input.output : { error: input.error },
        latencyMs: Math.round(input.latencyMs),
        reasoning: input.reasoning,
        taskContext: { task: input.task, ...(input.source ? { source: input.source.surface, client: input.source.client } : {}) },
        workflowId: input.workflowId,
      });
      // The trust ladder moves with every call: a tool that falls below 70% is quarantined (not run
      // again until repaired or replaced).
      const stats = await registry.stats(input.tool);
      const current = await registry.getCurrent(input.tool);
      const quarantine = statusForLevel(stats.level) === 'quarantined' && current?.status === 'active';
      if (quarantine) await registry.setStatus(input.tool, 'quarantined');
      const improve = input.inputRefused ? undefined : await improveTrigger(input.tool, quarantine);
      return { level: stats.level, quarantined: quarantine || current?.status === 'quarantined', ...(improve ? { improve } : {}) };
    },
  };
}
