// The workflow bundle's entry: every workflow type the workers serve.
export { taskWorkflow } from './task.ts';
export { forgeWorkflow } from './forge.ts';
export { replayWorkflow } from './replay.ts';
