import { condition, setHandler } from '@temporalio/workflow';
import { withArticle } from '../domain/words.ts';
import { databaseWork } from './activities.ts';
import { type ApprovalDecision, decideApprovalUpdate } from './definitions.ts';

const { requestApproval, resolveApproval } = databaseWork;

export interface ApprovalRequest {
  kind: 'write' | 'destructive' | 'budget' | 'confirm' | 'question' | 'escalation';
  tool?: string;
  summary: string;
  request?: unknown;
}

export interface ApprovalOutcome {
  /** the approval's id, as `forge approvals` lists it */
  id: string;
  approved: boolean;
  by?: string;
  /** a question's answer, in the person's words */
  answer?: string;
  timedOut: boolean;
}

/**
 * Humans hold the keys: a workflow asks, records the request in Postgres (so `forge approvals`
 * lists it), and waits for `forge approve|reject <id>` — an update whose validator refuses ids this
 * workflow is not waiting for, so a decision sent to the wrong workflow fails loudly at the CLI.
 */
export function approvals(workflowId: string) {
  // Calls of one turn run in parallel, so several approvals may wait at once: each by its own id.
  const pending = new Map<string, ApprovalRequest['kind']>();
  const decisions = new Map<string, ApprovalDecision>();
  let seq = 0;

  setHandler(
    decideApprovalUpdate,
    (d) => {
      decisions.set(d.approvalId, d);
      return { accepted: true, approvalId: d.approvalId, approve: d.approve };
    },
    {
      validator: (d) => {
        if (!pending.size) throw new Error(`workflow ${workflowId} is not waiting for any approval`);
        const kind = pending.get(d.approvalId);
        if (!kind) throw new Error(`workflow ${workflowId} waits for approval ${[...pending.keys()].join(', ')}, not ${d.approvalId}`);
        if (decisions.has(d.approvalId)) throw new Error(`approval ${d.approvalId} is already decided`);
        // A question is answered in words (forge answer); a decision on anything else carries none.
        if (kind === 'question' && d.approve && !d.answer?.trim())
          throw new Error(`approval ${d.approvalId} is a question: answer it with forge answer ${d.approvalId} "<your answer>"`);
        if (kind !== 'question' && d.answer !== undefined)
          throw new Error(`approval ${d.approvalId} is ${withArticle(kind)} approval, not a question: approve or reject it`);
      },
    },
  );

  return {
    /** the oldest approval still waiting (progress shows one at a time) */
    pendingId: () => pending.keys().next().value,
    async request(req: ApprovalRequest, timeout: string): Promise<ApprovalOutcome> {
      const id = `${workflowId}.${req.kind}.${++seq}`;
      // Waiting before the row is written: a person who sees it in `forge approvals` and decides at
      // once must not be told the workflow is not waiting (the activity's completion comes later).
      pending.set(id, req.kind);
      await requestApproval({ id, workflowId, ...req });
      const answered = await condition(() => decisions.has(id), timeout);
      pending.delete(id);
      const d = decisions.get(id);
      const outcome: ApprovalOutcome =
        answered && d ? { id, approved: d.approve, by: d.by, answer: d.answer, timedOut: false } : { id, approved: false, timedOut: true };
      await resolveApproval({ id, status: outcome.timedOut ? 'expired' : outcome.approved ? 'approved' : 'rejected', by: outcome.by });
      return outcome;
    },
  };
}
