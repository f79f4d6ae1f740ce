import { Client, Connection } from '@temporalio/client';
import type { ForgeConfig } from '../../domain/config.ts';

export async function testClient(cfg: ForgeConfig): Promise<Client> {
  const connection = await Connection.connect({ address: cfg.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  return new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE });
}

/** How many times an activity of this type was attempted, read from the workflow's real history. */
export async function activityAttempts(client: Client, workflowId: string, activityType: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  let attempts = 0;
  for (const e of history.events ?? []) {
    const started = e.activityTaskStartedEventAttributes;
    if (!started) continue;
    const scheduled = history.events?.find((s) => s.eventId?.toString() === started.scheduledEventId?.toString());
    if (scheduled?.activityTaskScheduledEventAttributes?.activityType?.name === activityType)
      attempts = Math.max(attempts, started.attempt ?? 1);
  }
  return attempts;
}
