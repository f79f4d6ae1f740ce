/**
 * How long a task waits for a person. Which calls need one is a safety rule and is not here
 * (domain/trust.ts: reads run, writes and destructive calls wait unless the tool earned trust);
 * a wait that runs out never runs the call.
 */
export const approval = {
  /** reuse of a tool that only probably fits the task */
  confirmReuseWait: '1 hour',
  /** a write or destructive call */
  callWait: '1 hour',
  /** a failed call the task could not repair and escalated */
  escalationWait: '15 minutes',
};
