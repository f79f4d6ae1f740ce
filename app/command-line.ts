/**
 * Command-line pieces the surfaces share (the CLI, `forge mcp`, `forge dashboard`): no surface may
 * import another, so what their option parsing has in common lives here.
 */

/**
 * Node's parseArgs reads a value that starts with a dash (`--limit -3`) as an option of its own
 * and refuses the whole line as ambiguous, so a person read the parser's advice instead of what
 * the option takes. For options that take a number, such a value is joined to its option
 * (`--limit=-3`) before parsing, so the option's own check refuses it with its range.
 */
export function joinDashedNumbers(args: string[], numberOptions: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return [...out, ...args.slice(i)];
    const next = args[i + 1];
    if (numberOptions.includes(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** A `--port` value: a whole number from 0 (any free port, which the server prints) to 65535. */
export function parsePortOption(text: string): { port: number } | { problem: string } {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isSafeInteger(n) && n <= 65_535) return { port: n };
  return { problem: `--port ${JSON.stringify(text)} is not valid: it takes a whole number from 1 to 65535 (or 0 for any free port)` };
}

/**
 * A parser's refusal (node's parseArgs) as the CLI words its own errors: lower-case first, and
 * without its advice on quoting a dash-led value (a number option joins one itself).
 */
export function parserMessage(err: Error): string {
  const text = err.message.split('. To specify')[0] ?? err.message;
  return text.charAt(0).toLowerCase() + text.slice(1);
}
