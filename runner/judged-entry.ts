import { judgedMain } from './judged.ts';

/**
 * The judged process's entry (bundled to /opt/forge/judged.mjs): the judge starts it for each tool
 * call or test file, never anything else. Its default export is the node:test reporter the process
 * loads from this same file (--test-reporter), so the tests report through the harness.
 */
export { forgeTestReporter as default } from './judged.ts';

void judgedMain();
