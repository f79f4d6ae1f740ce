/**
 * Builds this tree's workflow bundle into SHIPPED_BUNDLE_DIR: run when a worker image is built
 * (services/evolution/image.ts), so each container of the image — a replay's candidate, a deployed
 * worker — starts without spending seconds bundling. A failure leaves no file and exits 0: the
 * worker then bundles at start, as it would without this.
 */
import { describeError } from '../domain/errors.ts';
import { log } from '../services/log.ts';
import { SHIPPED_BUNDLE_DIR, workflowBundle } from './bundle.ts';

try {
  await workflowBundle(SHIPPED_BUNDLE_DIR);
} catch (err) {
  log.warn('workflow bundle not shipped: the worker will bundle at start', { reason: describeError(err) });
}
