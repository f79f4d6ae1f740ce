// The workflow bundle's entry: every workflow type the workers serve.

export { forgeWorkflow } from './forge.ts';
export { improveWorkflow } from './improve.ts';
export { replayWorkflow } from './replay.ts';
export { taskWorkflow } from './task.ts';
