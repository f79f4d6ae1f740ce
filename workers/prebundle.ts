/**
 * Builds this tree's workflow bundle into SHIPPED_BUNDLE_DIR: run when a worker image is built
 * (services/evolution/image.ts), so each container of the image — a replay's candidate, a deployed
 * worker — starts without spending seconds bundling. A failure leaves no file and exits 0: the
 * worker then bundles at start, as it would without this.
 */
import { SHIPPED_BUNDLE_DIR, workflowBundle } from './bundle.ts';

const started = performance.now();
try {
  await workflowBundle(SHIPPED_BUNDLE_DIR);
  process.stdout.write(
    `${JSON.stringify({ msg: 'workflow bundle shipped', dir: SHIPPED_BUNDLE_DIR, ms: Math.round(performance.now() - started) })}\n`,
  );
} catch (err) {
  process.stderr.write(`${JSON.stringify({ msg: 'workflow bundle not shipped: the worker will bundle at start', reason: String(err) })}\n`);
}
