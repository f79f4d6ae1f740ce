import type { ForgeConfig } from '../../app/context.ts';
import type { StartedCycle } from '../../app/cycles.ts';
import { type CycleEnd, componentDownIn, modelDownError } from '../../app/follow.ts';
import { reportCycleFailure } from '../output.ts';

type Unreachable = Parameters<typeof modelDownError>[2];

/**
 * A followed cycle (a forge, an improve cycle) that came to no outcome of its own — ended from
 * outside, or failed because its model never answered — reported as the failure it is, with its exit
 * code; undefined when the cycle has an outcome for its own printer.
 */
export function reportWithoutOutcome<R extends { status: string }>(
  cfg: ForgeConfig,
  started: Pick<StartedCycle, 'workflowId' | 'uiUrl'>,
  end: CycleEnd<R>,
  json: boolean,
): number | undefined {
  if (!end.ok)
    return reportCycleFailure(
      json,
      started,
      end.error,
      end.ended ? { status: end.ended } : {},
      componentDownIn(cfg, started.workflowId, end),
    );
  // Only a failed outcome carries these.
  const outcome: { status: string; reason?: string; modelUnreachable?: Unreachable } = end.result;
  if (outcome.status === 'failed' && outcome.modelUnreachable)
    return reportCycleFailure(
      json,
      started,
      outcome.reason ?? 'failed',
      { outcome },
      modelDownError(cfg, started.workflowId, outcome.modelUnreachable),
    );
  return undefined;
}
