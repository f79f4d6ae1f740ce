/** How many second chances the agent gives its own output before it gives up. */

/** Verification failed: diagnose and repair the implementation this many times (capped at 3 by domain/forge.ts). */
export const forge = { maxRepairs: 3 };

/** A reply that does not fit its schema is sent back with the error this many times (a billed call each). */
export const llm = { reasks: 1 };
