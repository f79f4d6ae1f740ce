import type { Client } from '@temporalio/client';
import { ForgeError } from '../domain/errors.ts';

/**
 * Temporal Worker Versioning for the control worker: one worker deployment, one version per image
 * (build id from its digest). New workflows go to the current version; a workflow stays on the
 * version it started on (the worker's default behaviour is PINNED), so a swap never moves work
 * mid-flight, and a rollback is setting the previous version current again.
 */
type Service = Client['workflowService'];

export interface DeploymentState {
  /** the current version's build id; null when unversioned workers get new workflows */
  current: string | null;
  ramping: string | null;
  versions: { buildId: string; drained: boolean; status: string }[];
}

export class DeploymentOpError extends ForgeError {
  constructor(op: string, deployment: string, reason: string) {
    super(
      `Temporal refused to ${op} of worker deployment ${deployment}: ${reason}`,
      'DEPLOYMENT_OP_FAILED',
      'check that the Temporal server supports Worker Versioning (server 1.28 or later; the dev server does) and that the version has pollers (forge doctor)',
      { op, deployment },
    );
  }
}

const notFound = (err: unknown) => /not ?found|NOT_FOUND/i.test(String((err as { message?: string })?.message ?? err));

export function workerDeployments(service: Service, namespace: string, identity = 'forge') {
  async function describe(deploymentName: string): Promise<DeploymentState> {
    try {
      const res = await service.describeWorkerDeployment({ namespace, deploymentName });
      const info = res.workerDeploymentInfo;
      return {
        current: info?.routingConfig?.currentDeploymentVersion?.buildId || null,
        ramping: info?.routingConfig?.rampingDeploymentVersion?.buildId || null,
        versions: (info?.versionSummaries ?? []).map((v) => ({
          buildId: v.deploymentVersion?.buildId ?? '',
          // enums.v1.VersionDrainageStatus: 2 = DRAINED
          drained: Number(v.drainageStatus) === 2,
          status: String(v.status ?? ''),
        })),
      };
    } catch (err) {
      if (notFound(err)) return { current: null, ramping: null, versions: [] };
      throw new DeploymentOpError('describe', deploymentName, String(err));
    }
  }

  /** Makes `buildId` current (null: unversioned workers), idempotently; Temporal refuses a version with no pollers. */
  async function setCurrent(deploymentName: string, buildId: string | null): Promise<void> {
    try {
      await service.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName,
        buildId: buildId ?? '',
        identity,
        ignoreMissingTaskQueues: true,
      });
    } catch (err) {
      throw new DeploymentOpError(`make ${buildId ?? 'unversioned workers'} current`, deploymentName, String(err));
    }
  }

  /** Whether the version has registered with the deployment (its worker has polled). */
  async function hasVersion(deploymentName: string, buildId: string): Promise<boolean> {
    return (await describe(deploymentName)).versions.some((v) => v.buildId === buildId);
  }

  return { describe, setCurrent, hasVersion };
}

export type WorkerDeployments = ReturnType<typeof workerDeployments>;
