import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { ReplayTarget } from '../domain/audit.ts';
import { ForgeError } from '../domain/errors.ts';
import { createReplayLedger, replayTarget } from '../services/catalog/audit.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guard } from './guard.ts';

const loadInputSchema = z.object({ auditId: z.number().int().positive() });
const recordInputSchema = z.object({
  workflowId: z.string().min(1),
  requestedBy: z.string().min(1),
  target: z.custom<ReplayTarget>((v) => typeof v === 'object' && v !== null, 'expected the replay target'),
  run: z.object({ ok: z.boolean(), output: z.unknown().optional(), error: z.string().optional(), latencyMs: z.number() }),
});

/** A missing entry or a version that is gone cannot be fixed by retrying: fail at once, saying why. */
function permanent(err: unknown): unknown {
  if (!(err instanceof ForgeError)) return err;
  return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, details: [{ fix: err.fix ?? null }] });
}

/** The replay workflow's control-side steps. */
export function createAuditActivities(deps: { sql: Sql; killSwitch: KillSwitch }) {
  const ledger = createReplayLedger(deps);
  return adapted({
    async loadReplayTarget(raw: z.input<typeof loadInputSchema>): Promise<ReplayTarget> {
      const { auditId } = parseActivityInput(loadInputSchema, raw, 'loadReplayTarget input');
      // A replay is a side effect: refused while frozen, before any sandbox job is scheduled.
      await guard(deps.killSwitch, `replay of audit entry #${auditId}`);
      try {
        return await replayTarget(deps.sql, auditId);
      } catch (err) {
        throw permanent(err);
      }
    },
    recordReplay: (raw: z.input<typeof recordInputSchema>) =>
      ledger.recordReplay(parseActivityInput(recordInputSchema, raw, 'recordReplay input')),
  });
}
