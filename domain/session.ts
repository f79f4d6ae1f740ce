import { z } from 'zod';
import type { AgentCall } from './agent.ts';
import { ForgeError, InvalidInputError } from './errors.ts';
import { OUTSIDE_END_STATUSES, type OutsideEndStatus } from './outside-end.ts';

/**
 * Sessions: a conversation of tasks. A task started with a session id sees the session's earlier
 * exchanges (task, answer, and the tool calls that produced it), so "that list" can mean an earlier
 * tool output. The last few come whole (clipped), older ones one line each, the oldest only counted.
 */

/** A short slug a person types (`forge run … --session groceries`), also safe in a workflow id or a URL. */
export const sessionIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'a session id is a short slug: a letter or digit, then letters, digits, ".", "_" or "-", 64 characters at most',
  );

/**
 * A session id as a person typed it, checked: one that is not a slug is refused as the session id
 * (not as "the task" it came with), naming the value and what a valid one looks like.
 */
export function checkedSessionId(id: string): string {
  const parsed = sessionIdSchema.safeParse(id);
  if (parsed.success) return parsed.data;
  throw new InvalidInputError(
    'session id',
    `${JSON.stringify(id)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    'name the session with a slug such as groceries or q3-report_v2 (forge sessions lists the ones in use)',
  );
}

/** How much of a session a task is shown; the numbers are the harness's (harness/policy/session.ts). */
export interface SessionContextPolicy {
  /** the last this many exchanges come whole: task, answer, each call's input and output */
  recent: number;
  /** before those, at most this many exchanges as one line each (task and answer); older ones are only counted */
  summarised: number;
  /** characters kept of each call's input and output (JSON) in a recent exchange */
  callChars: number;
  /** characters kept of a recent exchange's answer */
  answerChars: number;
  /** characters kept of the task and the answer in a summary line */
  lineChars: number;
}

/** How an earlier task ended: its result's status, 'failed' with no result, or still running. */
export type ExchangeStatus = 'completed' | 'failed' | 'stopped' | 'running';

/** One call of an earlier exchange, as the model is shown it: JSON text, clipped. */
export interface SessionCall {
  tool: string;
  version?: number;
  status: AgentCall['status'];
  input: string;
  output?: string;
  reason?: string;
}

/** An earlier task of the session, whole (clipped). */
export interface SessionExchange {
  position: number;
  workflowId: string;
  task: string;
  status: ExchangeStatus;
  answer?: string;
  calls: SessionCall[];
}

/** An older task of the session, one line: what was asked and what came of it. */
export interface SessionSummaryLine {
  position: number;
  task: string;
  status: ExchangeStatus;
  answer?: string;
}

/** What a task is shown of its session: everything before its own position. */
export interface SessionContext {
  sessionId: string;
  /** this task's place in the session (1 = it opened the session) */
  position: number;
  /** exchanges before the older lines were cut, only counted */
  omitted: number;
  older: SessionSummaryLine[];
  recent: SessionExchange[];
}

/** An earlier task as the database holds it (tasks + session_tasks). */
export interface SessionTaskRow {
  position: number;
  workflowId: string;
  task: string;
  /** tasks.status: running, completed (see result.status) or failed (see error) */
  status: string;
  error?: string | null;
  result?: { status?: string; answer?: string; calls?: AgentCall[] } | null;
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** One line: newlines and runs of spaces collapse, so a summary line stays a line. */
function oneLine(text: string, max: number): string {
  return clip(text.replace(/\s+/g, ' ').trim(), max);
}

function json(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
}

/** How an earlier task ended, from its row. */
export function exchangeStatus(row: Pick<SessionTaskRow, 'status' | 'result'>): ExchangeStatus {
  if (row.status === 'running') return 'running';
  const s = row.result?.status;
  if (s === 'completed' || s === 'failed' || s === 'stopped') return s;
  return 'failed';
}

/** How a task stands as a person reads it: as an exchange, or how Temporal ended it from outside (terminated, …). */
export type TaskStatus = ExchangeStatus | OutsideEndStatus;

/** A task's status from its row, for a person: an end recorded from outside keeps its own name (the agent reads it as failed). */
export function taskStatus(row: Pick<SessionTaskRow, 'status' | 'result'>): TaskStatus {
  const outside = OUTSIDE_END_STATUSES.find((s) => s === row.status && s !== 'failed');
  return outside ?? exchangeStatus(row);
}

/** The earlier task's answer in words, or why it failed. */
export function exchangeAnswer(row: Pick<SessionTaskRow, 'error' | 'result'>): string | undefined {
  return row.result?.answer ?? (row.error ? `failed: ${row.error}` : undefined);
}

/**
 * A task's view of its session from the rows before it (any order): the last `recent` whole, the
 * `summarised` before those as lines, the rest counted. Deterministic, so no model call summarises.
 */
export function sessionContextFrom(
  sessionId: string,
  position: number,
  rows: readonly SessionTaskRow[],
  policy: SessionContextPolicy,
): SessionContext {
  const earlier = rows.filter((r) => r.position < position).sort((a, b) => a.position - b.position);
  const recentFrom = Math.max(0, earlier.length - policy.recent);
  const olderFrom = Math.max(0, recentFrom - policy.summarised);
  const shown = earlier.length - olderFrom;
  return {
    sessionId,
    position,
    // The caller may load only the rows it will show; every position before this one is a task.
    omitted: Math.max(0, position - 1 - shown),
    older: earlier.slice(olderFrom, recentFrom).map((r) => {
      const answer = exchangeAnswer(r);
      return {
        position: r.position,
        task: oneLine(r.task, policy.lineChars),
        status: exchangeStatus(r),
        ...(answer === undefined ? {} : { answer: oneLine(answer, policy.lineChars) }),
      };
    }),
    recent: earlier.slice(recentFrom).map((r) => {
      const answer = exchangeAnswer(r);
      return {
        position: r.position,
        workflowId: r.workflowId,
        task: r.task,
        status: exchangeStatus(r),
        ...(answer === undefined ? {} : { answer: clip(answer, policy.answerChars) }),
        calls: (r.result?.calls ?? []).map((c) => ({
          tool: c.tool,
          ...(c.version !== undefined ? { version: c.version } : {}),
          status: c.status,
          input: clip(json(c.input), policy.callChars),
          ...(c.status === 'succeeded' ? { output: clip(json(c.output ?? null), policy.callChars) } : {}),
          ...(c.reason ? { reason: oneLine(c.reason, policy.lineChars) } : {}),
        })),
      };
    }),
  };
}

/** A session as `forge sessions ls` lists it. */
export interface SessionSummary {
  id: string;
  title: string;
  tasks: number;
  createdAt: string;
  updatedAt: string;
}

/** A session with its tasks in order, as `forge sessions show` prints it. */
export interface SessionDetail extends SessionSummary {
  entries: {
    position: number;
    workflowId: string;
    task: string;
    status: TaskStatus;
    answer?: string;
    calls: { tool: string; version?: number; status: AgentCall['status'] }[];
    createdAt: string;
  }[];
}

export class SessionNotFoundError extends ForgeError {
  constructor(id: string) {
    super(
      `no session ${JSON.stringify(id)}`,
      'SESSION_NOT_FOUND',
      'list sessions with: forge sessions ls (a task starts one: forge run "<task>" --session <id>)',
      {
        id,
      },
    );
  }
}
