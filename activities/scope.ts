import { Context } from '@temporalio/activity';
import type { LlmScope } from '../services/llm/client.ts';

/** The running activity's workflow and activity ids and cancellation signal; nothing outside one. */
export function activityScope(): LlmScope {
  try {
    const ctx = Context.current();
    return { workflowId: ctx.info.workflowExecution?.workflowId, activityId: ctx.info.activityId, signal: ctx.cancellationSignal };
  } catch {
    return {};
  }
}
