/**
 * Alerts: every promotion, rollback and archive of a tool is audited (services/catalog/admin.ts)
 * and, when FORGE_ALERT_WEBHOOK is set, also POSTed as JSON to it, so a person hears of a change
 * nobody asked for at the moment it happens. An alert never decides anything and must never stop
 * what it reports: delivery is retried with backoff a few times within a deadline, and a failure is
 * logged, never thrown. Delivery is at least once: a retried activity may post the same alert
 * again, with the same `id`, which a receiver may use to drop the repeat.
 */
import { z } from 'zod';
import { describeError } from '../../domain/errors.ts';
import { toolNameSchema } from '../../domain/tool.ts';
import { config } from '../config.ts';
import { type Logger, log as rootLog } from '../log.ts';

export const alertKindSchema = z.enum(['promotion', 'rollback', 'archive']);
export type AlertKind = z.infer<typeof alertKindSchema>;

export const alertEventSchema = z.object({
  kind: alertKindSchema,
  tool: toolNameSchema,
  /** the version current before (null: none) */
  fromVersion: z.number().int().min(1).nullable().default(null),
  /** the version current after (an archive leaves the last one in place) */
  toVersion: z.number().int().min(1).nullable().default(null),
  reason: z.string().max(4000),
  /** a person (forge tools rollback), or the workflow that acted on its own */
  by: z.string().min(1).max(200),
  workflowId: z.string().max(1000).optional(),
  /** the audit entry's idempotency key: the same alert posted twice carries the same id */
  id: z.string().min(1).max(512),
  /** anything else a receiver may show: the evaluation, the gate's summary, the replacement */
  details: z.record(z.string(), z.unknown()).optional(),
});
export type AlertEvent = z.input<typeof alertEventSchema>;

/** What is posted: the event, a one-line text (chat webhooks show `text`), when and from where. */
export interface AlertPayload extends z.output<typeof alertEventSchema> {
  source: 'forge';
  at: string;
  text: string;
}

export interface AlertDelivery {
  delivered: boolean;
  /** set when nothing was posted because no webhook is configured */
  skipped?: 'no-webhook';
  attempts: number;
  /** the last HTTP status seen */
  status?: number;
  error?: string;
}

export interface AlertOptions {
  /** the webhook; absent: FORGE_ALERT_WEBHOOK (services/config.ts), read when an alert is posted */
  url?: string | null;
  /** attempts in all (default 4) */
  attempts?: number;
  /** first backoff (default 500 ms), doubled after each failed attempt */
  backoffMs?: number;
  /** one attempt's time limit (default 3 s) */
  timeoutMs?: number;
  /** the whole delivery's time limit, backoffs included (default 10 s): no attempt starts after it */
  deadlineMs?: number;
  logger?: Logger;
}

export type Alerts = ReturnType<typeof createAlerts>;

const KIND_WORDS: Record<AlertKind, string> = { promotion: 'promoted', rollback: 'rolled back', archive: 'archived' };

/** The line a person reads in a chat channel. */
export function alertText(e: z.output<typeof alertEventSchema>): string {
  const versions =
    e.kind === 'archive'
      ? e.toVersion === null
        ? ''
        : ` (last version v${e.toVersion})`
      : ` ${e.fromVersion === null ? '' : `v${e.fromVersion} → `}v${e.toVersion ?? '?'}`;
  return `Forge: ${e.tool} ${KIND_WORDS[e.kind]}${versions} by ${e.by}: ${e.reason}`;
}

/** A response worth another attempt: the receiver was busy or broken, not refusing the alert. */
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds or an HTTP date, as Retry-After says; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const s = Number(header);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function configuredWebhook(logger: Logger): string | undefined {
  try {
    return config().FORGE_ALERT_WEBHOOK;
  } catch (err) {
    // A broken configuration is reported where it is loaded; an alert must not add a second failure.
    logger.warn('could not read FORGE_ALERT_WEBHOOK: alert not posted', { error: describeError(err) });
    return undefined;
  }
}

export function createAlerts(opts: AlertOptions = {}) {
  const logger = (opts.logger ?? rootLog).child({ component: 'alerts' });
  const attempts = Math.max(1, opts.attempts ?? 4);
  const backoffMs = opts.backoffMs ?? 500;
  const timeoutMs = opts.timeoutMs ?? 3000;
  const deadlineMs = opts.deadlineMs ?? 10_000;

  /** Posts one alert; resolves with what happened, never rejects. */
  async function post(event: AlertEvent): Promise<AlertDelivery> {
    const url = opts.url === undefined ? configuredWebhook(logger) : (opts.url ?? undefined);
    if (!url) return { delivered: false, skipped: 'no-webhook', attempts: 0 };
    let payload: AlertPayload;
    try {
      const e = alertEventSchema.parse(event);
      payload = { source: 'forge', at: new Date().toISOString(), text: alertText(e), ...e };
    } catch (err) {
      logger.error('alert not posted: the event is malformed', { error: describeError(err), event });
      return { delivered: false, attempts: 0, error: describeError(err) };
    }
    const body = JSON.stringify(payload);
    const deadline = Date.now() + deadlineMs;
    let status: number | undefined;
    let error: string | undefined;
    let wait = backoffMs;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) return failed(attempt - 1, 'the delivery deadline passed');
      let retryAfter: number | undefined;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'forge-alerts', 'idempotency-key': payload.id },
          body,
          signal: AbortSignal.timeout(Math.min(timeoutMs, left)),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined); // drain, so the connection is released
        if (res.ok) {
          logger.info('alert posted', { kind: payload.kind, tool: payload.tool, id: payload.id, attempts: attempt });
          return { delivered: true, attempts: attempt, status };
        }
        error = `the webhook answered ${res.status}`;
        if (!retryable(res.status)) return failed(attempt, error);
        retryAfter = retryAfterMs(res.headers.get('retry-after'));
      } catch (err) {
        status = undefined;
        error = describeError(err);
      }
      if (attempt === attempts) break;
      const pause = Math.max(wait, retryAfter ?? 0);
      if (Date.now() + pause >= deadline) return failed(attempt, `${error}; no time left for another attempt`);
      await sleep(pause);
      wait *= 2;
    }
    return failed(attempts, error ?? 'unknown error');

    function failed(n: number, why: string): AlertDelivery {
      // the host only: a webhook's path often holds its secret
      const host = URL.canParse(url!) ? new URL(url!).host : 'the webhook';
      logger.error('alert not delivered', { kind: payload.kind, tool: payload.tool, id: payload.id, attempts: n, error: why, host });
      return { delivered: false, attempts: n, ...(status === undefined ? {} : { status }), error: why };
    }
  }

  return { post };
}
