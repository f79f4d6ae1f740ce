/**
 * `forge run "<task>" --wait` while the task's forge waits for a person (forging past the daily
 * budget): a tester saw nothing at all — the approval is the forge child's, and the task's own
 * progress does not carry it. Following a task now looks at its forge child while it forges, and
 * prints the wait and the command that ends it, as it already did for a write approval.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withForgeChildApproval } from '../../app/tasks.ts';
import { progressPrinter } from '../../cli/progress.ts';
import type { TaskProgress } from '../../domain/task.ts';

const t0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(t0 + s * 1000).toISOString();
const TASK = 'task-20260101000000-abc123';
const CHILD = `${TASK}.forge.toolu_01`;
const APPROVAL = `${CHILD}.budget.1`;

const forging: TaskProgress = {
  phase: 'forging',
  history: [
    { phase: 'starting', at: at(0) },
    { phase: 'discovering', at: at(0.1) },
    { phase: 'thinking', at: at(0.2), note: 'turn 1' },
    { phase: 'forging', at: at(1.4), note: 'make_slug' },
  ],
  turn: 1,
  calls: [],
};

const budgetWait = {
  phase: 'awaiting-budget-approval',
  pendingApproval: APPROVAL,
  history: [
    { phase: 'budget', note: undefined },
    { phase: 'awaiting-budget-approval', note: '3 of 3 tools forged today' },
  ],
};

describe("following a task: its forge child's wait for a person", () => {
  it('a forge child waiting for budget approval: the approval and what it is about', async () => {
    const asked: string[] = [];
    const p = await withForgeChildApproval(
      forging,
      async () => [
        { workflowId: `improve-other`, workflowType: 'improveWorkflow' },
        { workflowId: CHILD, runId: 'r1', workflowType: 'forgeWorkflow' },
      ],
      async (child) => {
        asked.push(child.workflowId);
        return budgetWait;
      },
    );
    assert.deepEqual(asked, [CHILD], 'only forge children are asked');
    assert.equal(p.pendingApproval, APPROVAL);
    assert.deepEqual(p.waitingIn, { workflowId: CHILD, phase: 'awaiting-budget-approval', note: '3 of 3 tools forged today' });
  });

  it('asks nothing while the task waits itself, or does not forge; a forge that waits for nobody changes nothing', async () => {
    const never = async () => assert.fail('no describe needed');
    const own = { ...forging, pendingApproval: `${TASK}.write.1` };
    assert.equal(await withForgeChildApproval(own, never, never), own);
    const thinking: TaskProgress = { ...forging, phase: 'thinking' };
    assert.equal(await withForgeChildApproval(thinking, never, never), thinking);
    const busy = await withForgeChildApproval(
      forging,
      async () => [{ workflowId: CHILD, workflowType: 'forgeWorkflow' }],
      async () => ({ phase: 'verifying', history: [] }),
    );
    assert.equal(busy.pendingApproval, undefined);
    // A child that no longer answers (it just closed) is no reason to fail following the task.
    const gone = await withForgeChildApproval(
      forging,
      async () => {
        throw new Error('not found');
      },
      never,
    );
    assert.equal(gone.pendingApproval, undefined);
  });

  it('forge run --wait prints the wait, why, and the command that approves it, once', async () => {
    let out = '';
    const print = progressPrinter({ tty: false, write: (s) => (out += s), now: () => t0 + 3000 });
    const waiting = await withForgeChildApproval(
      forging,
      async () => [{ workflowId: CHILD, workflowType: 'forgeWorkflow' }],
      async () => budgetWait,
    );
    print(waiting);
    print(waiting);
    print.stop();
    assert.equal(
      out
        .split('\n')
        .filter((l) => l.startsWith('  waiting'))
        .join('\n'),
      `  waiting for a person — forging its new tool goes past today's forge budget (3 of 3 tools forged today): forge approve ${APPROVAL}   (or: forge reject ${APPROVAL})`,
    );
  });
});
