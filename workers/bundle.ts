import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const workflowsPath = path.join(root, 'workflows', 'index.ts');

function sourceHash(): string {
  const h = crypto.createHash('sha256');
  for (const dir of ['workflows', 'domain']) {
    for (const f of fs.readdirSync(path.join(root, dir)).sort()) {
      if (f.endsWith('.ts')) h.update(f).update(fs.readFileSync(path.join(root, dir, f)));
    }
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
