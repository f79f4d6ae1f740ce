// Activity interfaces as workflows see them (types only: workflows never import implementations).
import type { createApprovalActivities } from './approvals.ts';
import type { createAuditActivities } from './audit.ts';
import type { createStoreActivities } from './store.ts';
import type { createTaskToolActivities } from './task-tools.ts';
import type { createRegisteredToolActivities } from './sandbox/run-registered.ts';
import type { llmActivities } from './llm.ts';
import type { forgeLlmActivities } from './forge-llm.ts';
import type { createForgeStoreActivities } from './forge-store.ts';
import type { createSandboxActivities } from './sandbox/index.ts';
import type { createVerifyActivities } from './sandbox/verify-activity.ts';

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
