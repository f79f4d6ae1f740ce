// Activity interfaces as workflows see them (types only: workflows never import implementations).
import type { createApprovalActivities } from '../services/control/approvals.ts';
import type { createAuditActivities } from '../services/catalog/audit.ts';
import type { createStoreActivities } from '../services/runs/tasks.ts';
import type { createTaskToolActivities } from '../services/catalog/tool-calls.ts';
import type { createRegisteredToolActivities } from '../services/sandbox/run-registered.ts';
import type { llmActivities } from '../services/llm/client.ts';
import type { forgeLlmActivities } from '../services/llm/forge-author.ts';
import type { createForgeStoreActivities } from '../services/runs/forge-runs.ts';
import type { createSandboxActivities } from '../services/sandbox/index.ts';
import type { createVerifyActivities } from './verify.ts';

export type ControlActivities = ReturnType<typeof createStoreActivities> &
  ReturnType<typeof llmActivities> &
  ReturnType<typeof forgeLlmActivities> &
  ReturnType<typeof createForgeStoreActivities> &
  ReturnType<typeof createApprovalActivities> &
  ReturnType<typeof createTaskToolActivities> &
  ReturnType<typeof createAuditActivities>;
export type SandboxActivities = ReturnType<typeof createSandboxActivities> &
  ReturnType<typeof createVerifyActivities> &
  ReturnType<typeof createRegisteredToolActivities>;
