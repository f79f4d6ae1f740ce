import { parserMessage } from '../app/command-line.ts';
import { ForgeError } from '../app/errors.ts';

/**
 * The CLI's exit codes (README, "Exit codes"): scripts tell "the thing failed" from "you called it
 * wrong" from "Forge is not running" without parsing messages.
 */
export const EXIT = {
  /** done: the task completed, the tool was registered, the decision was accepted */
  ok: 0,
  /** the thing itself failed or was refused: a failed or stopped task, a forge that registered nothing, a stale approval */
  failed: 1,
  /** bad usage: an unknown command or option, a missing or malformed argument, an invalid setting */
  usage: 2,
  /** a component Forge needs does not answer (Temporal, Postgres, Docker, …): run forge up / forge doctor */
  componentDown: 3,
} as const;

/** Error codes that mean the person's input (command line, environment) is what to fix. */
const USAGE_CODES = new Set(['USAGE', 'INPUT_INVALID', 'CONFIG_INVALID']);

/** Every printJson value goes here instead of stdout while a command's output is captured (forge demo --json). */
let capture: unknown[] | undefined;

/** Commands print results on stdout; --json prints exactly one JSON line. */
export function printJson(value: unknown): void {
  if (capture) capture.push(value);
  else process.stdout.write(JSON.stringify(value) + '\n');
}

/** Runs `fn` with its JSON lines collected rather than printed, so a composite command prints one line of its own. */
export async function capturingJson<T>(fn: () => Promise<T>): Promise<{ value: T; lines: unknown[] }> {
  const outer = capture;
  const lines: unknown[] = [];
  capture = lines;
  try {
    return { value: await fn(), lines };
  } finally {
    capture = outer;
  }
}

export function say(line = ''): void {
  process.stdout.write(line + '\n');
}

/** A command line that does not parse: node's parseArgs errors (unknown option, missing value, stray argument). */
function isArgParseError(err: unknown): err is Error & { code: string } {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** Bad usage of a command, with how to call it. */
export function usageError(message: string, usage?: string): ForgeError {
  const line = usage?.replace(/^usage: /, '');
  return new ForgeError(message, 'USAGE', line ? `usage: ${line}` : 'forge help lists every command');
}

/**
 * A command called without an argument it cannot do without: says which one is missing and shows
 * the usage line, instead of judging a value the person never gave (`invalid task: describe …`).
 */
export function missingArgument(command: string, what: string, usage: string): ForgeError {
  return usageError(`forge ${command} needs ${what}`, usage);
}

/** The exit code an error means (EXIT). */
export function exitCodeFor(err: unknown): number {
  if (isArgParseError(err)) return EXIT.usage;
  if (err instanceof ForgeError) {
    if (USAGE_CODES.has(err.code)) return EXIT.usage;
    if (err.code === 'COMPONENT_DOWN') return EXIT.componentDown;
  }
  return EXIT.failed;
}

/**
 * Turns any error into a message a person can act on, and an exit code. `usage` (the command's
 * usage line) is the fix shown for a command line that does not parse.
 */
export function reportError(err: unknown, json: boolean, usage?: string): number {
  const e = isArgParseError(err) ? usageError(parserMessage(err), usage) : err;
  if (e instanceof ForgeError) {
    if (json) printJson({ ok: false, ...e.toJSON() });
    else {
      process.stderr.write(`error: ${e.message}\n`);
      if (e.fix) process.stderr.write(`  fix: ${e.fix}\n`);
    }
    return exitCodeFor(err);
  }
  const message = e instanceof Error ? e.message : String(e);
  // Not an error Forge knows how to explain: it still gets a fix, so every error line has one.
  const fix = 'forge doctor checks each component; if all are ok, this is a bug in Forge: report it with the command you ran';
  if (json) printJson({ ok: false, error: 'UNEXPECTED', message, fix });
  else process.stderr.write(`error: ${message}\n  fix: ${fix}\n`);
  return EXIT.failed;
}

/**
 * A followed cycle whose workflow itself failed (no result to print: not a task that failed, a
 * workflow that did): the same error shape as any other refusal (code, message, fix), with the
 * cycle's ids and, as the fix, where its history shows the step that failed. One that failed
 * because a component does not answer (`down`: the model) is that component's error instead, exit 3,
 * with its fix: nothing in the cycle's history would help.
 */
export function reportCycleFailure(
  json: boolean,
  cycle: { workflowId: string; uiUrl?: string | null },
  error: string,
  extra: Record<string, unknown> = {},
  down?: ForgeError,
): number {
  const fix =
    down?.fix ??
    (cycle.uiUrl
      ? `its history in the Temporal UI shows the step that failed: ${cycle.uiUrl}`
      : `its history in the Temporal UI (workflow ${cycle.workflowId}) shows the step that failed`);
  const message = down?.message ?? error;
  if (json)
    printJson({
      ok: false,
      ...extra,
      workflowId: cycle.workflowId,
      uiUrl: cycle.uiUrl ?? null,
      ...(down ? down.toJSON() : { error: 'CYCLE_FAILED' }),
      message,
      fix,
    });
  else process.stderr.write(`${down ? 'error' : 'failed'}: ${message}\n  fix: ${fix}\n`);
  return down ? exitCodeFor(down) : EXIT.failed;
}

/** Text as one line (whitespace runs folded), at most `max` characters, ending in … when clipped. */
export function clipLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * A value as compact JSON, at most `max` characters, ending in … when clipped. JSON is one line
 * already, and its strings' whitespace is the value's own (a word count's input), so none is folded.
 */
export function clipJson(value: unknown, max: number): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
