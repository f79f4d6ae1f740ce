// Activity interfaces as workflows see them (types only: workflows never import implementations).
import type { createStoreActivities } from './store.ts';
import type { llmActivities } from './llm.ts';
import type { createSandboxActivities } from './sandbox/index.ts';

export type ControlActivities = ReturnType<typeof createStoreActivities> & ReturnType<typeof llmActivities>;
export type SandboxActivities = ReturnType<typeof createSandboxActivities>;
