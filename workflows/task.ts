import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ActivityFailure,
  ChildWorkflowFailure,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import {
  type AgentCall,
  type AgentMessage,
  agentLimitsSchema,
  askPersonInputSchema,
  type CallRecovery,
  explicitForgeRequest,
  forgeNeed,
  forgeToolInputSchema,
  META_TOOLS,
  type OfferedTool,
  resultText,
  searchToolsInputSchema,
  type ToolResultBlock,
  type ToolUseBlock,
} from '../domain/agent.ts';
import { clause } from '../domain/errors.ts';
import type { ForgeOutcome } from '../domain/forge.ts';
import { type ImproveOutcome, isTransient } from '../domain/improve.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import type { SessionContext } from '../domain/session.ts';
import { outcomeOf, type TaskBound, type TaskInput, type TaskProgress, type TaskResult, taskInputSchema } from '../domain/task.ts';
import { harness } from '../harness/index.ts';
import { foldedBookkeeping, llmCalls, sandboxJobs } from './activities.ts';
import { approvals } from './approval.ts';
import { failedWith, failureCause, parseWorkflowInput } from './common.ts';
import { progressQuery } from './definitions.ts';
import { recordTaskEvidence } from './evidence.ts';
import { forgeWorkflow } from './forge.ts';
import { improveWorkflow, improveWorkflowId } from './improve.ts';
import { track } from './progress.ts';

const { agentTurn, diagnoseFailure } = llmCalls;

/**
 * A task is a tool-use loop: each model turn is one activity; each tool_use it asks for runs through
 * the trust gate, approval, the sandbox, metering and audit, and goes back as a tool_result; the
 * loop ends with the model's own answer, or when a bound stops it. The model may search the
 * catalog again, ask for a new tool (a forge child workflow; the tool is offered on the next turn)
 * or ask the person. Every side effect is keyed by workflow id + turn + call, so a worker killed at
 * any point resumes without calling, writing or forging anything twice.
 */
export async function taskWorkflow(raw: TaskInput): Promise<TaskResult> {
  const input = parseWorkflowInput(taskInputSchema, raw, 'task input', 'InvalidTaskInput');
  const limits = agentLimitsSchema.parse(input.limits ?? {});
  const { workflowId } = workflowInfo();
  const { sandboxRunRegisteredTool } = sandboxJobs(input.sandboxQueue);
  const { steps, folded } = foldedBookkeeping();
  const { beginTask, completeTask, describeTool, failTask, joinSession, offerTools, recordStep, recordToolCall, startTask, toolGate } =
    steps;

  const progress: TaskProgress = { phase: 'starting', history: [], turn: 0, calls: [] };
  const { enter, guarded } = track(progress);
  const approval = approvals(workflowId);
  setHandler(progressQuery, () => ({ ...progress, pendingApproval: approval.pendingId() }));

  const offered = new Map<string, OfferedTool>();
  const forged: string[] = [];
  const repaired: NonNullable<TaskResult['repaired']> = [];
  /** improve cycles the evaluator asked for, by tool; and tools this task already repaired or started a cycle for */
  const improveLater = new Map<string, { trigger: 'evaluator' | 'degraded'; reason: string }>();
  const tried = new Set<string>();
  const tokens = { input: 0, output: 0 };
  let session: SessionContext | undefined;
  /** The first user message: the session's earlier exchanges, if any (a document: data, not instructions), then the task. */
  const opening = (text: string): AgentMessage => ({
    role: 'user',
    content: session && session.position > 1 ? [harness.prompts.agent.session(session), { type: 'text', text }] : text,
  });
  const messages: AgentMessage[] = [opening(harness.prompts.agent.task(input.task))];

  try {
    enter('starting');
    if (folded) {
      // The task's row, its session, discovery and its record: one local activity.
      const begun = await beginTask({ workflowId, task: input.task, sessionId: input.sessionId });
      session = begun.session;
      if (session) messages[0] = opening(harness.prompts.agent.task(input.task));
      enter('discovering');
      for (const tool of begun.tools) offered.set(tool.name, tool);
    } else {
      await startTask({ workflowId, task: input.task });
      if (input.sessionId) {
        session = await joinSession({ sessionId: input.sessionId, workflowId, task: input.task });
        messages[0] = opening(harness.prompts.agent.task(input.task));
      }
      enter('discovering');
      const discovery = await offerTools({ query: input.task });
      for (const tool of discovery.tools) offered.set(tool.name, tool);
      await recordStep({ workflowId, step: 'discovery', output: discovery.considered });
    }
    if (explicitForgeRequest(input.task)) {
      // "Create a tool that …" asks for a new tool, even when a similar one exists.
      const res = await forgeFor({ description: input.task }, 'request');
      if (res.is_error) return await finish('failed', `could not build the tool you asked for: ${res.content}`);
      messages[0] = opening(`${harness.prompts.agent.task(input.task)}\n\n${res.content}`);
    }

    for (let turn = 1; ; turn++) {
      const bound = boundReached(turn);
      if (bound) return await finish('stopped', bound.message + lastFailure(), bound.bound);
      progress.turn = turn;
      enter('thinking', `turn ${turn}`);
      const reply = await guarded(() => agentTurn({ messages, tools: [...offered.values()] }));
      tokens.input += reply.tokens.input;
      tokens.output += reply.tokens.output;
      messages.push({ role: 'assistant', content: reply.content });
      const step = { step: `turn-${turn}`, output: { stopReason: reply.stopReason, content: reply.content } };
      const uses = reply.content.filter((b): b is ToolUseBlock => b.type === 'tool_use');
      // Folded, a turn that ends the task is recorded with the task's result (finish); any other
      // turn on its own, as before.
      const endsTask = !uses.length || progress.calls.length + uses.length > limits.maxToolCalls;
      if (!folded || !endsTask) await recordStep({ workflowId, ...step });
      const lastStep = folded ? step : undefined;

      const thought = reply.content
        .map((b) => (b.type === 'text' ? b.text : ''))
        .join('\n')
        .trim();
      if (!uses.length) {
        return await finish(outcomeOf(progress.calls).status, thought || '(the model ended without an answer)', undefined, lastStep);
      }
      if (progress.calls.length + uses.length > limits.maxToolCalls) {
        return await finish(
          'stopped',
          `stopped: the model asked for ${uses.length} more tool call(s) after ${progress.calls.length}, over the bound of ${limits.maxToolCalls} per task (raise it: forge run --max-tool-calls <n>, or maxToolCalls in MCP's run_task)`,
          'maxToolCalls',
          lastStep,
        );
      }
      // Independent calls of one turn run in parallel; the model sees the results in its order.
      const results = await Promise.all(uses.map((use, i) => callTool(use, `${turn}.${i + 1}`, turn, thought)));
      // Calls are listed as they finish; the task's list keeps the model's order (its tool_use blocks, call ids turn.1, turn.2, …).
      const finished = progress.calls.splice(progress.calls.length - uses.length);
      progress.calls.push(...uses.map((use) => finished.find((c) => c.id === use.id)!));
      messages.push({ role: 'user', content: results });
      await startRequestedImproves();
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    const message = failureCause(err);
    enter('failed', message);
    await failTask({ workflowId, error: message });
    // Failure evidence for self-evolution (issue 11): best effort, never the task's outcome.
    await recordTaskEvidence(
      {
        workflowId,
        result: { task: input.task, status: 'failed', answer: message, calls: progress.calls, turns: progress.turn, forged, limits },
        sessionId: input.sessionId,
        error: message,
      },
      folded ? steps : undefined,
    );
    throw failedWith(err, 'TaskFailed');
  }

  /** A task a bound stopped says why it got nowhere: what its last call, when it did not succeed, came to. */
  function lastFailure(): string {
    const last = progress.calls[progress.calls.length - 1];
    if (!last || last.status === 'succeeded') return '';
    return `; the last call, ${last.tool}, ${last.status === 'failed' ? 'failed' : 'did not run'}: ${last.reason ?? 'no reason given'}`;
  }

  function boundReached(turn: number): { bound: TaskBound; message: string } | undefined {
    if (turn > limits.maxTurns) {
      return {
        bound: 'maxTurns',
        message: `stopped: no answer after ${limits.maxTurns} turn${limits.maxTurns === 1 ? '' : 's'}, the bound per task (raise it: forge run --max-turns <n>, or maxTurns in MCP's run_task)`,
      };
    }
    if (tokens.input + tokens.output >= limits.maxTokens) {
      return {
        bound: 'maxTokens',
        message: `stopped: the task used ${tokens.input + tokens.output} tokens, over the bound of ${limits.maxTokens} (raise it: forge run --max-tokens <n>, or maxTokens in MCP's run_task)`,
      };
    }
    return undefined;
  }

  /** step: the turn that ended the task, recorded with its result (when bookkeeping is folded) */
  async function finish(
    status: TaskResult['status'],
    answer: string,
    stoppedBy?: TaskBound,
    step?: { step: string; output: unknown },
  ): Promise<TaskResult> {
    enter('answering');
    const result: TaskResult = {
      workflowId,
      task: input.task,
      status,
      answer,
      calls: progress.calls,
      turns: progress.turn,
      tokens,
      stoppedBy,
      limits,
      forged,
      ...(repaired.length ? { repaired } : {}),
    };
    await completeTask({ workflowId, result, ...(step ? { step } : {}) });
    // Failure evidence for self-evolution (issue 11): a failed or stopped task, an escalated or refused call, a forged duplicate.
    await recordTaskEvidence({ workflowId, result, sessionId: input.sessionId }, folded ? steps : undefined);
    enter(status === 'completed' ? 'completed' : status === 'stopped' ? 'stopped' : 'failed', status === 'completed' ? undefined : answer);
    return result;
  }

  /** One tool_use: a meta-tool the loop answers itself, or a catalog tool run in the sandbox. */
  async function callTool(use: ToolUseBlock, callId: string, turn: number, thought: string): Promise<ToolResultBlock> {
    const record = (call: Omit<AgentCall, 'turn' | 'id' | 'input'>, content: string, isError: boolean): ToolResultBlock => {
      progress.calls.push({ turn, id: use.id, input: use.input, ...call });
      return { type: 'tool_result', tool_use_id: use.id, content, ...(isError ? { is_error: true } : {}) };
    };
    if (use.name === META_TOOLS.search) return search(use, record);
    if (use.name === META_TOOLS.forge) {
      const req = forgeToolInputSchema.safeParse(use.input);
      if (!req.success) return invalidInput(use, req.error, record);
      enter('forging', req.data.name ?? req.data.description.slice(0, 60));
      const res = await forgeFor(req.data, callId);
      return record(
        res.is_error
          ? { tool: use.name, status: 'failed', reason: res.content }
          : {
              tool: use.name,
              status: 'succeeded',
              // what a person reads in the calls: that nothing new was made, when so
              output: { forged: res.tool?.name, version: res.tool?.version, ...(res.note ? { note: res.note } : {}) },
            },
        res.content,
        res.is_error,
      );
    }
    if (use.name === META_TOOLS.ask) return ask(use, record);
    const tool = offered.get(use.name);
    if (!tool) {
      const message = `${use.name} is not one of the offered tools (${[...offered.keys()].join(', ') || 'none'}); use search_tools or forge_tool`;
      return record({ tool: use.name, status: 'not-run', reason: message, slip: 'unknown-tool' }, message, true);
    }
    return runCatalogTool(use, callId, thought, record);
  }

  type Record = (call: Omit<AgentCall, 'turn' | 'id' | 'input'>, content: string, isError: boolean) => ToolResultBlock;

  /** A meta-tool's input that does not fit its schema: refused before anything runs, the validation error fed back. */
  function invalidInput(use: ToolUseBlock, error: Parameters<typeof invalid>[1], record: Record): ToolResultBlock {
    const message = invalid(use.name, error);
    return record({ tool: use.name, status: 'failed', reason: message, slip: 'invalid-input' }, message, true);
  }

  async function search(use: ToolUseBlock, record: Record): Promise<ToolResultBlock> {
    const req = searchToolsInputSchema.safeParse(use.input);
    if (!req.success) return invalidInput(use, req.error, record);
    enter('searching', req.data.query);
    const found = await offerTools({ query: req.data.query });
    for (const tool of found.tools) offered.set(tool.name, tool);
    const lines = found.tools.map((t) => `- ${t.name}: ${t.description}`);
    const content = lines.length
      ? `Offered from the next turn:\n${lines.join('\n')}`
      : `No catalog tool matches "${req.data.query}". Call forge_tool to have one written.`;
    return record({ tool: use.name, status: 'succeeded', output: found.tools.map((t) => t.name) }, content, false);
  }

  async function ask(use: ToolUseBlock, record: Record): Promise<ToolResultBlock> {
    const req = askPersonInputSchema.safeParse(use.input);
    if (!req.success) return invalidInput(use, req.error, record);
    enter('awaiting-answer', req.data.question);
    const reply = await approval.request({ kind: 'question', summary: req.data.question }, harness.policy.approval.callWait);
    if (reply.timedOut || !reply.approved || !reply.answer) {
      const why = reply.timedOut
        ? `nobody answered within ${harness.policy.approval.callWait}`
        : `${reply.by ?? 'the person'} declined to answer`;
      // The model decides what to do without the answer: say so plainly, since guessing is what it must not do.
      const content = `${why} (the question was "${req.data.question}"). Do not guess the answer: finish without it, or say what you could not do without it.`;
      return record({ tool: use.name, status: 'not-run', reason: why }, content, true);
    }
    return record(
      { tool: use.name, status: 'succeeded', output: reply.answer },
      `${reply.by ?? 'The person'} answered: ${reply.answer}`,
      false,
    );
  }

  /** A forge child workflow; on success the new tool is offered from the next turn on. */
  async function forgeFor(
    req: { name?: string; description: string; parameters?: string; returns?: string; example?: string },
    key: string,
  ) {
    const outcome: ForgeOutcome = await executeChild(forgeWorkflow, {
      workflowId: `${workflowId}.forge.${key}`,
      args: [{ need: forgeNeed(req), name: req.name, sandboxQueue: input.sandboxQueue }],
      typedSearchAttributes: [{ key: CYCLE_KIND, value: 'forge' }, ...(req.name ? [{ key: TOOL_NAME, value: req.name }] : [])],
    });
    if (outcome.status !== 'registered') return { is_error: true, content: `forging the tool failed: ${outcome.reason}` } as const;
    forged.push(outcome.name);
    const tool = await describeTool({ name: outcome.name });
    offered.set(tool.name, tool);
    return {
      is_error: false,
      tool,
      note: outcome.note,
      // A forge that landed on a name the catalog held registered nothing new: say what it came to.
      content: outcome.note
        ? `${outcome.note}. ${tool.name} v${tool.version}: ${tool.description} It is offered as a tool from the next turn.`
        : `Forged ${tool.name} v${tool.version}, verified in the sandbox and registered: ${tool.description} It is offered as a tool from the next turn.`,
    };
  }

  type Gate = Awaited<ReturnType<typeof toolGate>>;
  type Attempt = { ok: boolean; output?: unknown; error?: string };

  /** Whether a person lets the call run (writes and destructive calls of tools that have not earned it); the reason when not. */
  async function approved(gate: Gate, toolInput: unknown): Promise<string | undefined> {
    if (!gate.approval.needed) return undefined;
    enter('awaiting-approval', gate.approval.reason);
    const ok = await approval.request(
      {
        kind: gate.destructive ? 'destructive' : 'write',
        tool: gate.name,
        summary: `${gate.name} v${gate.version} with ${JSON.stringify(toolInput).slice(0, 300)} — ${gate.approval.reason}`,
        request: toolInput,
      },
      harness.policy.approval.callWait,
    );
    if (ok.approved) return undefined;
    return ok.timedOut ? `nobody approved the call within ${harness.policy.approval.callWait}` : `${ok.by ?? 'a person'} rejected the call`;
  }

  /**
   * One sandboxed call of one version, metered and audited under its own key; may ask for the
   * tool's improve cycle. `announced`: the caller entered this call's `calling` already, with nothing since.
   */
  async function execute(gate: Gate, toolInput: unknown, callId: string, thought: string, announced = false): Promise<Attempt> {
    if (!announced) enter('calling', `${gate.name} v${gate.version}`);
    const run = await guarded(() => sandboxRunRegisteredTool({ name: gate.name, version: gate.version, input: toolInput }));
    const error = run.ok ? undefined : (run.reason ?? `exit ${run.exitCode}`);
    const metered = await recordToolCall({
      workflowId,
      callId,
      tool: gate.name,
      version: gate.version,
      input: toolInput,
      output: run.output,
      success: run.ok,
      error,
      latencyMs: run.durationMs,
      reasoning: thought || `agent turn ${callId.split('.')[0]} called ${gate.name}`,
      task: input.task,
    });
    if (metered.improve) improveLater.set(gate.name, metered.improve);
    return { ok: run.ok, output: run.output, error };
  }

  async function runCatalogTool(use: ToolUseBlock, callId: string, thought: string, record: Record): Promise<ToolResultBlock> {
    const gate = await toolGate({ name: use.name, input: use.input });
    const base = { tool: gate.name, version: gate.version };
    // Once per call, with the version that answers (a re-run, a retry or the call after a person's approval says so again).
    enter('calling', `${gate.name} v${gate.version}`);
    if (gate.approval.blocked) return record({ ...base, status: 'not-run', reason: gate.approval.reason }, gate.approval.reason, true);
    if (gate.inputProblem) {
      // Judged on the host against the declared schema: the model's slip, never run, audited but
      // never metered, so a model's mistakes cannot quarantine a sound tool.
      await recordToolCall({
        workflowId,
        callId,
        tool: gate.name,
        version: gate.version,
        input: use.input,
        success: false,
        error: gate.inputProblem,
        latencyMs: 0,
        reasoning: thought || `agent turn ${callId.split('.')[0]} called ${use.name}`,
        task: input.task,
        inputRefused: true,
      });
      const content = `${gate.inputProblem}. Call ${use.name} again with input that fits its schema.`;
      return record({ ...base, status: 'failed', reason: gate.inputProblem, slip: 'invalid-input' }, content, true);
    }
    const refused = await approved(gate, use.input);
    if (refused) return record({ ...base, status: 'not-run', reason: refused }, refused, true);
    const first = await execute(gate, use.input, callId, thought, !gate.approval.needed);
    if (first.ok) return record({ ...base, status: 'succeeded', output: first.output }, resultText(first.output), false);
    const { attempt, recovery, version, note } = await recover(gate, use.input, callId, thought, first.error ?? 'failed');
    const call = { tool: gate.name, version, recovery };
    return attempt.ok
      ? record({ ...call, status: 'succeeded', output: attempt.output }, `${resultText(attempt.output)}\n\n${note}`, false)
      : record({ ...call, status: 'failed', reason: attempt.error }, note, true);
  }

  /**
   * A failed call, made good if it can be (the ToolForge flow): a transient failure is retried;
   * otherwise the model diagnoses it, and a tool at fault that a rewrite can fix is repaired by the
   * tool's improve cycle (the failing input becomes a regression case) and the call re-run on the
   * new version; what cannot be repaired goes to a person, with the diagnosis.
   */
  async function recover(
    gate: Gate,
    toolInput: unknown,
    callId: string,
    thought: string,
    firstError: string,
  ): Promise<{ attempt: Attempt; recovery: CallRecovery; version: number; note: string }> {
    const recovery: CallRecovery = { retries: 0 };
    let attempt: Attempt = { ok: false, error: firstError };
    for (let r = 1; !attempt.ok && isTransient(attempt.error ?? '') && r <= harness.policy.improve.transientRetries; r++) {
      enter('retrying', `${gate.name}: ${(attempt.error ?? '').slice(0, 120)} (retry ${r} of ${harness.policy.improve.transientRetries})`);
      await sleep(1000 * 2 ** (r - 1));
      attempt = await execute(gate, toolInput, `${callId}.retry${r}`, thought);
      recovery.retries = r;
    }
    if (attempt.ok)
      return {
        attempt,
        recovery,
        version: gate.version,
        note: `(${gate.name} succeeded after ${recovery.retries} retr${recovery.retries === 1 ? 'y' : 'ies'}.)`,
      };
    const error = attempt.error ?? 'failed';

    enter('diagnosing', `${gate.name} v${gate.version}: ${error.slice(0, 160)}`);
    const diagnosis = await diagnose(gate, toolInput, error);
    recovery.diagnosis = diagnosis;
    await recordStep({ workflowId, step: `diagnosis-${callId}`, output: diagnosis });
    // The notes below end this with their own full stop: a diagnosis is sentences, and ends in one.
    const failed = `the call failed: ${clause(error)}. Diagnosis: ${clause(diagnosis.diagnosis)}`;
    if (diagnosis.atFault === 'input') {
      return {
        attempt,
        recovery,
        version: gate.version,
        note: `${failed}. Call ${gate.name} differently, or tell the user what it cannot do.`,
      };
    }

    let repairNote = '';
    if (diagnosis.atFault === 'tool' && diagnosis.fixable) {
      const repair = await repairTool(gate, toolInput, error, diagnosis.diagnosis);
      recovery.repair = repair;
      if (repair.status === 'promoted' && repair.toVersion) {
        const next = await toolGate({ name: gate.name, input: toolInput });
        const refused = next.approval.blocked ? next.approval.reason : await approved(next, toolInput);
        attempt = refused ? { ok: false, error: refused } : await execute(next, toolInput, `${callId}.v${next.version}`, thought);
        if (attempt.ok) {
          repaired.push({ tool: gate.name, fromVersion: gate.version, toVersion: next.version });
          return {
            attempt,
            recovery,
            version: next.version,
            note: `(${gate.name} v${gate.version} failed on this input: ${clause(error)}. Diagnosis: ${diagnosis.diagnosis} It was repaired as v${next.version}, which passed the regression gate, and the call was re-run on it.)`,
          };
        }
        repairNote = ` A repair (v${next.version}) passed the regression gate, but the re-run failed too: ${clause(attempt.error ?? 'failed')}.`;
      } else {
        repairNote = ` A repair was tried and did not pass: ${clause(repair.reason)}.`;
      }
    }

    enter('escalated', `${gate.name}: ${diagnosis.diagnosis}`);
    const decision = await approval.request(
      {
        kind: 'escalation',
        tool: gate.name,
        summary: `${gate.name} v${gate.version} failed and could not be repaired: ${error.slice(0, 300)} — diagnosis: ${diagnosis.diagnosis}${repairNote} Approve to retry the call once (after fixing the cause), reject to go on without it.`,
        request: { input: toolInput, error, diagnosis, repair: recovery.repair },
      },
      harness.policy.approval.escalationWait,
    );
    recovery.escalation = { approvalId: decision.id, decision: decision.approved ? 'retry' : decision.timedOut ? 'timed-out' : 'declined' };
    if (decision.approved) {
      const again = await toolGate({ name: gate.name, input: toolInput });
      attempt = again.approval.blocked
        ? { ok: false, error: again.approval.reason }
        : await execute(again, toolInput, `${callId}.escalated`, thought);
      if (attempt.ok)
        return {
          attempt,
          recovery,
          version: again.version,
          note: `(${gate.name} failed, was escalated to ${decision.by ?? 'a person'}, and succeeded on the retry they approved.)`,
        };
    }
    const outcome = decision.approved
      ? `the retry ${decision.by ?? 'a person'} approved failed too: ${clause(attempt.error ?? 'failed')}`
      : decision.timedOut
        ? `nobody answered within ${harness.policy.approval.escalationWait}`
        : `${decision.by ?? 'a person'} declined to retry it`;
    return {
      attempt,
      recovery,
      version: gate.version,
      note: `${failed}.${repairNote} It was escalated to a person (approval ${decision.id}): ${outcome}. Tell the user what failed and why; do not call ${gate.name} again with this input.`,
    };
  }

  /** The model's structured diagnosis; a diagnosis that cannot be had is an unknown cause, which only a person can fix. */
  async function diagnose(gate: Gate, toolInput: unknown, error: string): Promise<NonNullable<CallRecovery['diagnosis']>> {
    try {
      return await guarded(() => diagnoseFailure({ task: input.task, tool: gate.name, version: gate.version, input: toolInput, error }));
    } catch (err) {
      if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
      const cause = err.cause instanceof Error ? err.cause.message : err.message;
      return { atFault: 'environment', fixable: false, diagnosis: `the failure could not be diagnosed (${cause})` };
    }
  }

  /** The tool's improve cycle as a child: the failing input becomes a regression case, the gate decides. */
  async function repairTool(
    gate: Gate,
    toolInput: unknown,
    error: string,
    diagnosis: string,
  ): Promise<NonNullable<CallRecovery['repair']>> {
    enter('repairing', `${gate.name} v${gate.version}: ${diagnosis}`);
    const childId = improveWorkflowId(gate.name);
    tried.add(gate.name);
    try {
      const outcome: ImproveOutcome = await executeChild(improveWorkflow, {
        workflowId: childId,
        args: [
          {
            tool: gate.name,
            trigger: 'task-failure',
            failures: [{ input: toolInput, error }],
            reason: diagnosis,
            sandboxQueue: input.sandboxQueue,
          },
        ],
        typedSearchAttributes: [
          { key: CYCLE_KIND, value: 'improve' },
          { key: TOOL_NAME, value: gate.name },
        ],
      });
      return { workflowId: childId, status: outcome.status, toVersion: outcome.toVersion, reason: outcome.reason };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        return { workflowId: childId, status: 'skipped', reason: `an improve cycle for ${gate.name} is already running (${childId})` };
      }
      if (err instanceof ChildWorkflowFailure) {
        return { workflowId: childId, status: 'failed', reason: err.cause instanceof Error ? err.cause.message : err.message };
      }
      throw err;
    }
  }

  /** Improve cycles the evaluator asked for, started once a turn's calls are done (not for a tool this task already repairs). */
  async function startRequestedImproves(): Promise<void> {
    for (const [tool, trigger] of improveLater) {
      improveLater.delete(tool);
      if (tried.has(tool)) continue;
      tried.add(tool);
      try {
        await startChild(improveWorkflow, {
          workflowId: improveWorkflowId(tool),
          args: [{ tool, trigger: trigger.trigger, reason: trigger.reason, sandboxQueue: input.sandboxQueue }],
          // It outlives the task: a rewrite is the tool's business, not this task's.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          typedSearchAttributes: [
            { key: CYCLE_KIND, value: 'improve' },
            { key: TOOL_NAME, value: tool },
          ],
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  }
}

function invalid(tool: string, error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issues = error.issues.map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`).join('; ');
  return `invalid ${tool} input: ${issues}. Call it again with input that fits its schema.`;
}
