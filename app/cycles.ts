import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { CYCLE_KIND, TOOL_NAME } from '../domain/search-attributes.ts';
import { temporalEndpoint } from '../infra/temporal.ts';
import { improveWorkflowId } from '../workflows/improve.ts';
import {
  curateWorkflow,
  deployWorkflow,
  forgeWorkflow,
  improveWorkflow,
  replayWorkflow,
  taskWorkflow,
  toolCallWorkflow,
  verifyFolderWorkflow,
} from '../workflows/index.ts';
import type { Session } from './context.ts';

/**
 * Starting a cycle: the one place that mints workflow ids and starts workflows, by their typed
 * workflow functions (a renamed workflow or a wrong argument fails to compile, not at run time).
 */
const cycles = {
  task: taskWorkflow,
  forge: forgeWorkflow,
  replay: replayWorkflow,
  improve: improveWorkflow,
  call: toolCallWorkflow,
  deploy: deployWorkflow,
  curate: curateWorkflow,
  verify: verifyFolderWorkflow,
};

export type CycleKind = keyof typeof cycles;
type CycleWorkflow<K extends CycleKind> = (typeof cycles)[K];

/** What a surface shows (and keeps, to follow the cycle later) once a cycle has started. */
export interface StartedCycle {
  workflowId: string;
  /** the first run's id: following it follows the whole chain of runs */
  runId: string;
  uiUrl: string | null;
}

/** `<kind>-[<qualifier>-]<UTC yyyymmddhhmmss>-<6 hex>`: unique, sorted by time, readable in the UI. */
export function mintWorkflowId(kind: CycleKind, qualifier?: string | number): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14);
  return [kind, ...(qualifier === undefined ? [] : [String(qualifier)]), stamp, randomBytes(3).toString('hex')].join('-');
}

/**
 * The workflow's page in the Temporal UI, when the UI is known (Forge's own dev server, or
 * TEMPORAL_UI_URL); with a run id, that run's page (an id such as improve-<tool> is reused by
 * later cycles).
 */
export function workflowUiUrl(cfg: ForgeConfig, workflowId: string, runId?: string): string | null {
  const ui = temporalEndpoint(cfg).uiUrl;
  if (!ui) return null;
  const page = `${ui}/namespaces/${encodeURIComponent(cfg.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${page}/${encodeURIComponent(runId)}/history` : page;
}

/** Starts a cycle, tagged with the search attributes the UI filters on (ForgeCycleKind, ForgeToolName). */
export async function startCycle<K extends CycleKind>(
  session: Session,
  kind: K,
  args: Parameters<CycleWorkflow<K>>,
  opts: { qualifier?: string | number; toolName?: string } = {},
): Promise<StartedCycle> {
  const client = await session.temporal();
  // A tool has at most one improve cycle at a time: its id is the tool's, and a second start is refused while one runs.
  const workflowId = kind === 'improve' && opts.toolName ? improveWorkflowId(opts.toolName) : mintWorkflowId(kind, opts.qualifier);
  const workflow: CycleWorkflow<K> = cycles[kind];
  const handle = await client.workflow.start(workflow, {
    taskQueue: session.cfg.FORGE_TASK_QUEUE,
    workflowId,
    args,
    typedSearchAttributes: [{ key: CYCLE_KIND, value: kind }, ...(opts.toolName ? [{ key: TOOL_NAME, value: opts.toolName }] : [])],
  });
  return { workflowId, runId: handle.firstExecutionRunId, uiUrl: workflowUiUrl(session.cfg, workflowId) };
}

/** The handle of a started cycle: from its first run on, so results and queries follow every run. */
export async function cycleHandle<K extends CycleKind>(
  session: Session,
  _kind: K,
  started: StartedCycle,
): Promise<WorkflowHandle<CycleWorkflow<K>>> {
  const client = await session.temporal();
  return client.workflow.getHandle<CycleWorkflow<K>>(started.workflowId, undefined, { firstExecutionRunId: started.runId });
}
