// The static stage's worker thread (static-thread.ts starts it). Plain JavaScript, like
// bin/forge.mjs: it registers tsx in the thread itself before loading the TypeScript of static.ts,
// whatever loader hooks the parent had.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { analyzeStatic } = await import('./static.ts');

parentPort.on('message', async ({ id, input }) => {
  try {
    parentPort.postMessage({ id, analysis: await analyzeStatic(input) });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err?.stack ?? err) });
  }
});
