/**
 * Typed errors. Each carries what a person needs to act: what went wrong,
 * and (where known) the command or setting that fixes it.
 */
export class ForgeError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly fix?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, fix: this.fix, ...this.details };
  }
}

export class ConfigError extends ForgeError {
  constructor(variable: string, value: string | undefined, expected: string) {
    super(
      `${variable}=${JSON.stringify(value)} is not valid: expected ${expected}`,
      'CONFIG_INVALID',
      `set ${variable} to ${expected}, or unset it to use the default`,
      { variable, value, expected },
    );
  }
}

export class ComponentDownError extends ForgeError {
  constructor(component: string, reason: string, fix: string) {
    super(`${component} is not available: ${reason}`, 'COMPONENT_DOWN', fix, { component });
  }
}

export class LlmOutputError extends ForgeError {
  constructor(what: string, issues: string, raw: string) {
    super(
      `the model's reply for ${what} did not match the expected shape: ${issues}`,
      'LLM_OUTPUT_INVALID',
      'check the prompt or the scenario file that produced this reply',
      { what, issues, raw: raw.slice(0, 2000) },
    );
  }
}

export class InvalidInputError extends ForgeError {
  constructor(what: string, issues: string, fix = `fix the ${what} and try again`) {
    super(`invalid ${what}: ${issues}`, 'INPUT_INVALID', fix, { what });
  }
}

/**
 * A message about to be followed by more words: without the full stop(s) it may end with, so
 * `${clause(m)}. more` never reads "Connection error.. more" (the SDK's messages end in one).
 */
export function clause(text: string): string {
  return text.trimEnd().replace(/\.+$/, '');
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Temporal failure type of activities refused while the kill switch is on. */
export const FROZEN_FAILURE = 'ForgeFrozen';

/**
 * A failure retrying cannot fix (a missing tool, an entry that cannot be replayed): it crosses
 * the activity boundary as a non-retryable failure whose type is its code.
 */
export class PermanentError extends ForgeError {}

/** Refused by the kill switch: workflows wait for `forge thaw` and try again (workflows/frozen.ts). */
export class FrozenRefusal extends ForgeError {
  constructor(message: string) {
    super(message, FROZEN_FAILURE, 'run forge thaw to resume');
  }
}

/** An LLM API call that failed, with whether another attempt can help and when to make it. */
export class LlmCallError extends ForgeError {
  constructor(
    message: string,
    readonly failureType: string,
    readonly retryable: boolean,
    readonly retryDelayMs?: number,
    details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, failureType, undefined, details);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export class ToolMissingError extends PermanentError {
  constructor(what: string) {
    super(what, 'ToolMissing', 'list the catalog with: forge tools ls');
  }
}
