// The workflow bundle's entry: every workflow type the workers serve.

export { curateWorkflow } from './curate.ts';
export { deployWorkflow } from './deploy.ts';
export { evolveWorkflow } from './evolve.ts';
export { forgeWorkflow } from './forge.ts';
export { improveWorkflow } from './improve.ts';
export { replayWorkflow } from './replay.ts';
export { taskWorkflow } from './task.ts';
export { toolCallWorkflow } from './tool-call.ts';
export { verifyFolderWorkflow } from './verify.ts';
