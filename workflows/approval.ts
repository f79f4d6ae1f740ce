import { condition, setHandler } from '@temporalio/workflow';
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
  let pending: string | undefined;
  let pendingKind: ApprovalRequest['kind'] | undefined;
  let decision: ApprovalDecision | undefined;
  let seq = 0;

  setHandler(
    decideApprovalUpdate,
    (d) => {
      decision = d;
      return { accepted: true, approvalId: d.approvalId, approve: d.approve };
    },
    {
      validator: (d) => {
        if (!pending) throw new Error(`workflow ${workflowId} is not waiting for any approval`);
        if (d.approvalId !== pending) throw new Error(`workflow ${workflowId} waits for approval ${pending}, not ${d.approvalId}`);
        // A question is answered in words (forge answer); a decision on anything else carries none.
        if (pendingKind === 'question' && d.approve && !d.answer?.trim())
          throw new Error(`approval ${pending} is a question: answer it with forge answer ${pending} "<your answer>"`);
        if (pendingKind !== 'question' && d.answer !== undefined)
          throw new Error(`approval ${pending} is a ${pendingKind} approval, not a question: approve or reject it`);
      },
    },
  );

  return {
    pendingId: () => pending,
    async request(req: ApprovalRequest, timeout: string): Promise<ApprovalOutcome> {
      const id = `${workflowId}.${req.kind}.${++seq}`;
      await requestApproval({ id, workflowId, ...req });
      pending = id;
      pendingKind = req.kind;
      decision = undefined;
      const answered = await condition(() => decision?.approvalId === id, timeout);
      pending = undefined;
      pendingKind = undefined;
      const d = decision as ApprovalDecision | undefined; // set by the update handler while we waited
      const outcome: ApprovalOutcome =
        answered && d ? { id, approved: d.approve, by: d.by, answer: d.answer, timedOut: false } : { id, approved: false, timedOut: true };
      await resolveApproval({ id, status: outcome.timedOut ? 'expired' : outcome.approved ? 'approved' : 'rejected', by: outcome.by });
      return outcome;
    },
  };
}
