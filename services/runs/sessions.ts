import type { AgentCall } from '../../domain/agent.ts';
import { PermanentError } from '../../domain/errors.ts';
import {
  clip,
  exchangeAnswer,
  type SessionContext,
  type SessionDetail,
  type SessionSummary,
  type SessionTaskRow,
  sessionContextFrom,
  taskStatus,
} from '../../domain/session.ts';
import { harness } from '../../harness/index.ts';
import type { Sql } from '../db.ts';

interface TaskRow {
  position: number;
  workflow_id: string;
  task: string;
  status: string;
  error: string | null;
  result: SessionTaskRow['result'];
  created_at: Date;
}

const toRow = (r: TaskRow): SessionTaskRow => ({
  position: r.position,
  workflowId: r.workflow_id,
  task: r.task,
  status: r.status,
  error: r.error,
  result: r.result,
});

const iso = (d: Date | string) => new Date(d).toISOString();

/**
 * Sessions in Postgres (infra/migrations/050_sessions.sql). A task joins its session once, keyed by
 * its workflow id, so a join retried after a worker crash finds the same place and the same view.
 */
export function createSessionStore(sql: Sql) {
  return {
    /**
     * Puts the task in the session (the session is created by its first task, titled with it) and
     * returns what the task sees of it: the exchanges before its own place, as the harness's
     * session policy cuts them. The task's row (startTask) must exist.
     */
    async joinSession(input: { sessionId: string; workflowId: string; task: string }): Promise<SessionContext> {
      const policy = harness.policy.session;
      const { sessionId: id, workflowId } = input;
      return sql.begin(async (tx) => {
        await tx`insert into sessions (id, title) values (${id}, ${clip(input.task.replace(/\s+/g, ' ').trim(), 120)})
                 on conflict (id) do nothing`;
        // Row lock: concurrent joins of one session take places one after the other, never the same.
        await tx`select 1 from sessions where id = ${id} for update`;
        const [mine] = await tx<{ session_id: string; position: number }[]>`
          select session_id, position from session_tasks where workflow_id = ${workflowId}`;
        let position: number;
        if (mine) {
          if (mine.session_id !== id) {
            throw new PermanentError(
              `task ${workflowId} already belongs to session ${mine.session_id}, not ${id}`,
              'SESSION_CONFLICT',
              'start the task again with a new workflow id',
            );
          }
          position = mine.position;
        } else {
          const [placed] = await tx<{ position: number }[]>`
            insert into session_tasks (workflow_id, session_id, position)
            select ${workflowId}, ${id}, coalesce(max(position), 0) + 1 from session_tasks where session_id = ${id}
            returning position`;
          position = placed!.position;
          await tx`update sessions set updated_at = now() where id = ${id}`;
        }
        // Only what the task is shown: recent exchanges whole, the summarised ones without their calls.
        const whole = position - policy.recent;
        const rows = await tx<TaskRow[]>`
          select st.position, st.workflow_id, st.created_at, t.task, t.status, t.error,
                 case when st.position >= ${whole} then t.result
                      else jsonb_build_object('status', t.result->'status', 'answer', t.result->'answer') end as result
          from session_tasks st join tasks t on t.workflow_id = st.workflow_id
          where st.session_id = ${id} and st.position < ${position} and st.position >= ${whole - policy.summarised}
          order by st.position`;
        return sessionContextFrom(id, position, rows.map(toRow), policy);
      });
    },

    /** Sessions, most recently continued first; `total` counts them all. */
    async listSessions(opts: { limit: number }): Promise<{ sessions: SessionSummary[]; total: number }> {
      const rows = await sql<{ id: string; title: string; tasks: number; created_at: Date; updated_at: Date; total: number }[]>`
        select s.id, s.title, s.created_at, s.updated_at, count(st.workflow_id)::int as tasks, (count(*) over ())::int as total
        from sessions s left join session_tasks st on st.session_id = s.id
        group by s.id
        order by s.updated_at desc, s.id
        limit ${opts.limit}`;
      return {
        sessions: rows.map((r) => ({
          id: r.id,
          title: r.title,
          tasks: r.tasks,
          createdAt: iso(r.created_at),
          updatedAt: iso(r.updated_at),
        })),
        total: rows[0]?.total ?? 0,
      };
    },

    /** One session with its tasks in order, or undefined when there is none by that id. */
    async showSession(id: string): Promise<SessionDetail | undefined> {
      const [s] = await sql<{ id: string; title: string; created_at: Date; updated_at: Date }[]>`
        select id, title, created_at, updated_at from sessions where id = ${id}`;
      if (!s) return undefined;
      const rows = await sql<TaskRow[]>`
        select st.position, st.workflow_id, st.created_at, t.task, t.status, t.error, t.result
        from session_tasks st join tasks t on t.workflow_id = st.workflow_id
        where st.session_id = ${id}
        order by st.position`;
      return {
        id: s.id,
        title: s.title,
        tasks: rows.length,
        createdAt: iso(s.created_at),
        updatedAt: iso(s.updated_at),
        entries: rows.map((r) => {
          const answer = exchangeAnswer(r);
          return {
            position: r.position,
            workflowId: r.workflow_id,
            task: r.task,
            status: taskStatus(r),
            ...(answer === undefined ? {} : { answer }),
            calls: ((r.result?.calls ?? []) as AgentCall[]).map((c) => ({
              tool: c.tool,
              ...(c.version !== undefined ? { version: c.version } : {}),
              status: c.status,
            })),
            createdAt: iso(r.created_at),
          };
        }),
      };
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
