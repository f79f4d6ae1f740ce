import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../app/context.ts';
import { ForgeError, InvalidInputError } from '../../app/errors.ts';
import { type ExecResult, execToolFile } from '../../app/sandbox.ts';
import { envAssignment } from '../args.ts';
import { printJson, reportError, say } from '../output.ts';

/**
 * forge sandbox exec <tool-file> --input '<json>' [--env NAME[=VALUE]]... [--timeout <ms>] [--json]
 * Bundles the tool, runs it once in a fresh hardened container and prints the result.
 * Host variables reach the tool only when named with --env, and then only those the
 * tool's manifest declares: the others are dropped here, before anything reaches a container.
 */
const USAGE = "usage: forge sandbox exec <tool-file> --input '<json>' [--env NAME[=VALUE]]... [--timeout <ms>] [--json]";

export interface SandboxExecArgs {
  file: string;
  input: unknown;
  env: Record<string, string>;
  timeoutMs?: number;
  json: boolean;
}

export function parseSandboxExecArgs(args: string[], hostEnv: Record<string, string | undefined> = process.env): SandboxExecArgs {
  let file: string | undefined;
  let inputText = '{}';
  let timeoutMs: number | undefined;
  const env: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new InvalidInputError('arguments', `${arg} needs a value. ${USAGE}`);
      return v;
    };
    if (arg === '--json') continue;
    else if (arg === '--input') inputText = value();
    else if (arg === '--timeout') timeoutMs = Number(value());
    else if (arg === '--env') {
      const [name, v] = envAssignment(value(), hostEnv);
      if (v !== undefined) env[name] = v;
    } else if (arg.startsWith('--')) throw new InvalidInputError('arguments', `unknown option ${arg}. ${USAGE}`);
    else if (!file) file = arg;
    else throw new InvalidInputError('arguments', `unexpected argument ${JSON.stringify(arg)}. ${USAGE}`);
  }
  if (!file) throw new InvalidInputError('arguments', `missing <tool-file>. ${USAGE}`);
  toolFileOf(file);
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    throw new InvalidInputError('--timeout', 'expected a positive whole number of milliseconds');
  }
  let input: unknown;
  try {
    input = JSON.parse(inputText);
  } catch (err) {
    throw new InvalidInputError('--input', `not valid JSON (${(err as Error).message})`);
  }
  return { file: path.resolve(file), input, env, timeoutMs, json: args.includes('--json') };
}

/**
 * The tool file a person named, checked before anything reads it: a folder (the tool's, most
 * likely: `sandbox verify` takes one) or a path that is not there gets a hint, exit 2, not a
 * raw EISDIR or ENOENT.
 */
function toolFileOf(file: string): void {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (!stat)
    throw new ForgeError(
      `<tool-file> ${file} does not exist`,
      'USAGE',
      "pass the path of a tool's .ts file (a tool folder holds it as tool.ts); forge tools show <name> prints a registered tool's folder",
    );
  if (stat.isDirectory()) {
    const inside = path.join(file, 'tool.ts');
    throw new ForgeError(
      `<tool-file> ${file} is a folder: sandbox exec runs one tool file`,
      'USAGE',
      existsSync(inside)
        ? `run its tool: forge sandbox exec ${inside} --input '<json>'; or verify the whole folder: forge sandbox verify ${file}`
        : `pass a tool's .ts file; to verify a tool folder (tool.ts, tool.test.ts): forge sandbox verify <tool-dir>`,
    );
  }
}

function printHuman(file: string, r: ExecResult): void {
  if (r.envWithheld) process.stderr.write(`  --env ${r.envWithheld.names.join(', ')} not sent to the tool: ${r.envWithheld.reason}\n`);
  const timing = r.overheadMs === undefined ? `${r.durationMs} ms` : `${r.durationMs} ms, sandbox overhead ${r.overheadMs} ms`;
  if (r.ok) {
    say(`ok: ${path.basename(file)} (${timing})`);
    say(JSON.stringify(r.output, null, 2));
  } else {
    process.stderr.write(`failed: ${r.reason ?? 'the tool failed'}\n`);
    if (r.killedBy) process.stderr.write(`  contained: killed by the ${r.killedBy} limit\n`);
    if (r.error?.fix) process.stderr.write(`  fix: ${String(r.error.fix)}\n`);
    process.stderr.write(`  (${timing})\n`);
  }
  for (const l of r.logs ?? []) process.stderr.write(`  [${l.level}] ${l.msg}${l.fields ? ' ' + JSON.stringify(l.fields) : ''}\n`);
  if (r.stdout.trim()) process.stderr.write(`  stdout: ${r.stdout.trim().slice(0, 2000)}\n`);
  if (!r.ok && r.stderr.trim()) process.stderr.write(`  stderr: ${r.stderr.trim().slice(-2000)}\n`);
}

export async function sandboxExecCommand(args: string[]): Promise<number> {
  const json = args.includes('--json');
  try {
    const parsed = parseSandboxExecArgs(args);
    const result = await execToolFile(loadConfig(), {
      file: parsed.file,
      input: parsed.input,
      env: parsed.env,
      timeoutMs: parsed.timeoutMs,
    });
    if (json) printJson(result);
    else printHuman(parsed.file, result);
    return result.ok ? 0 : 1;
  } catch (err) {
    return reportError(err, json);
  }
}
