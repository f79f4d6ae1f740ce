import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { log } from '../services/log.ts';

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
 * Where a worker image carries the bundle of its own tree, made when the image was built
 * (services/evolution/image.ts, workers/prebundle.ts): a worker container starts without bundling.
 */
export const SHIPPED_BUNDLE_DIR = path.join(root, '.workflow-bundle');

/**
 * Bundles workflow code once per source version and caches it on disk: bundling takes seconds,
 * and workers restart often (tests, crash recovery). A bundle shipped beside the code is used first;
 * either file is named by the hash of the sources it was built from, so neither serves other code.
 */
export async function workflowBundle(cacheDir: string): Promise<WorkflowBundleWithSourceMap> {
  const started = performance.now();
  const name = `workflow-bundle-${sourceHash()}.json`;
  const found = [SHIPPED_BUNDLE_DIR, cacheDir].map((dir) => path.join(dir, name)).find((f) => fs.existsSync(f));
  if (found) {
    log.info('workflow bundle', { from: found.startsWith(SHIPPED_BUNDLE_DIR) ? 'shipped' : 'cache', file: found });
    return JSON.parse(fs.readFileSync(found, 'utf8')) as WorkflowBundleWithSourceMap;
  }
  const file = path.join(cacheDir, name);
  const bundle = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  log.info('workflow bundle', { from: 'built', file, ms: Math.round(performance.now() - started) });
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(bundle));
  fs.renameSync(tmp, file);
  return bundle;
}

const noop = () => {};
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m) };
