/** The improve cycle (seed 001: up to 3 rewrites, each behind the regression gate) and a task's retries of transient failures. */
export const improve = {
  attempts: 3,
  replays: 10,
  rewritesPerDay: 3,
  transientRetries: 3,
};
