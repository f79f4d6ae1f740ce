import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';

/**
 * Heartbeats every activity while it runs. With a heartbeat timeout on every activity, a worker
 * killed mid-call is noticed in seconds (not after the whole start-to-close timeout), and the
 * activity is retried on a live worker; the idempotency keys make that retry safe.
 */
export class HeartbeatInterceptor implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly everyMs = 2000,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    // A local activity has no heartbeat: it lives and dies with the workflow task that ran it.
    if (this.ctx.info.isLocal) return next(input);
    const timer = setInterval(() => this.ctx.heartbeat(), this.everyMs);
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}

export const heartbeatInterceptors = { activity: [(ctx: Context) => ({ inbound: new HeartbeatInterceptor(ctx) })] };
