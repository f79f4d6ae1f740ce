import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { ForgeConfig } from '../../domain/config.ts';
import { findTemporalCli } from '../../infra/temporal-cli.ts';

export async function testClient(cfg: ForgeConfig): Promise<Client> {
  const connection = await Connection.connect({ address: cfg.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  return new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE });
}

/**
 * How many times an activity of this type was attempted, read from the workflow's real history: an
 * activity's started events, or a local activity's marker (the SDK core's LocalActivityMarkerData,
 * JSON: the attempt that completed it).
 */
export async function activityAttempts(client: Client, workflowId: string, activityType: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  let attempts = 0;
  for (const e of history.events ?? []) {
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const scheduled = history.events?.find((s) => s.eventId?.toString() === started.scheduledEventId?.toString());
      if (scheduled?.activityTaskScheduledEventAttributes?.activityType?.name === activityType)
        attempts = Math.max(attempts, started.attempt ?? 1);
    }
    const marker = e.markerRecordedEventAttributes;
    const raw = marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0]?.data : undefined;
    if (raw) {
      const data = JSON.parse(Buffer.from(raw).toString('utf8')) as { activity_type?: string; attempt?: number };
      if (data.activity_type === activityType) attempts = Math.max(attempts, data.attempt ?? 1);
    }
  }
  return attempts;
}

/** `temporal workflow terminate`, as a person at a shell would run it against this Forge's Temporal (identity temporal-cli:…). */
export async function terminateWithTemporalCli(cfg: ForgeConfig, workflowId: string, reason: string, runId?: string): Promise<void> {
  const temporal = findTemporalCli(cfg);
  assert.ok(temporal, 'the Temporal CLI the test run provisioned');
  assert.ok(cfg.TEMPORAL_ADDRESS, 'the test run names its Temporal server');
  await promisify(execFile)(temporal, [
    'workflow',
    'terminate',
    '--address',
    cfg.TEMPORAL_ADDRESS,
    '--namespace',
    cfg.TEMPORAL_NAMESPACE,
    '--workflow-id',
    workflowId,
    ...(runId ? ['--run-id', runId] : []),
    '--reason',
    reason,
  ]);
}
