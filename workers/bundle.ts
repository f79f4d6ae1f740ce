import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const workflowsPath = path.join(root, 'workflows', 'index.ts');

/** The .ts files under dir, sub-folders included, by path relative to the root, in a stable order. */
function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []))
    .sort();
}

/** Everything the workflow bundle is built from: the workflows and the pure code they import (the harness's prompts and policy included). */
function sourceHash(): string {
  const h = crypto.createHash('sha256');
  for (const dir of ['workflows', 'domain', 'harness']) {
    for (const f of sourceFiles(dir)) h.update(f).update(fs.readFileSync(path.join(root, f)));
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Bundles workflow code once per source version and caches it on disk: bundling takes seconds,
 * and workers restart often (tests, crash recovery).
 */
export async function workflowBundle(cacheDir: string): Promise<WorkflowBundleWithSourceMap> {
  const file = path.join(cacheDir, `workflow-bundle-${sourceHash()}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as WorkflowBundleWithSourceMap;
  const bundle = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(bundle));
  fs.renameSync(tmp, file);
  return bundle;
}

const noop = () => {};
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m) };
