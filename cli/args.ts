import { ForgeError, InvalidInputError } from '../app/errors.ts';
import { usageError } from './output.ts';

/**
 * `--env NAME=VALUE` passes a value; `--env NAME` passes the host's own NAME (when set). Secrets thus
 * reach a sandboxed tool only when a person names them.
 */
export function envAssignment(spec: string, hostEnv: Record<string, string | undefined>): [string, string | undefined] {
  const eq = spec.indexOf('=');
  return eq < 0 ? [spec, hostEnv[spec]] : [spec.slice(0, eq), spec.slice(eq + 1)];
}

/**
 * Adds a command's usage to an input error a use case raised, so a person sees how to call it
 * (the use case itself knows nothing of the command line).
 */
export function withUsage<T>(pending: Promise<T>, usage: string): Promise<T> {
  return pending.catch((err: unknown) => {
    throw err instanceof InvalidInputError ? new ForgeError(`${err.message} (${usage})`, err.code, err.fix, err.details) : err;
  });
}

/**
 * An option's value that is not a whole number in its range: names the option, what was given and
 * what it takes, with the command's usage (instead of the schema's words about a field the person
 * never saw, `limits.maxTurns: expected number, received NaN`).
 */
export function wholeNumberOption(
  option: string,
  text: string,
  range: { min: number; max: number; default?: number },
  usage: string,
): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isSafeInteger(n) && n >= range.min && n <= range.max) return n;
  const expected = `a whole number from ${range.min} to ${range.max}${range.default === undefined ? '' : ` (default ${range.default})`}`;
  throw usageError(`${option} ${JSON.stringify(text)} is not valid: it takes ${expected}`, usage);
}

/** What `--limit` takes on every listing (the use cases behind them check the same range). */
export const LIMIT_RANGE = { min: 1, max: 1000 } as const;

/** A listing's `--limit` (absent: its default): a whole number in LIMIT_RANGE, refused naming the option, the range and the usage. */
export function limitOption(text: string | undefined, defaultLimit: number, usage: string): number {
  return text === undefined ? defaultLimit : wholeNumberOption('--limit', text, { ...LIMIT_RANGE, default: defaultLimit }, usage);
}

/**
 * A listing's options given to a command that shows one thing (`forge tasks show <id> --limit 5`):
 * refused, as an unknown option is, rather than silently ignored, naming where the option belongs.
 */
export function refuseListingOptions(
  values: Record<string, unknown>,
  options: readonly string[],
  at: { listing: string; sub: string },
  usage: string,
): void {
  const given = options.filter((o) => values[o] !== undefined);
  if (given.length)
    throw usageError(
      `${given.map((o) => `--${o}`).join(', ')} ${given.length === 1 ? 'is an option' : 'are options'} of the listing (${at.listing}), not of ${at.sub}`,
      usage,
    );
}

// Shared with forge mcp and forge dashboard, which may not import the CLI.
export { joinDashedNumbers } from '../app/command-line.ts';
