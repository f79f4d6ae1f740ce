import { ForgeError } from '../app/errors.ts';

/** Commands print results on stdout; --json prints exactly one JSON line. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function say(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Turns any error into a message a person can act on, and an exit code. */
export function reportError(err: unknown, json: boolean): number {
  if (err instanceof ForgeError) {
    if (json) printJson({ ok: false, ...err.toJSON() });
    else {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.fix) process.stderr.write(`  fix: ${err.fix}\n`);
    }
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (json) printJson({ ok: false, error: 'UNEXPECTED', message });
  else process.stderr.write(`error: ${message}\n`);
  return 1;
}
