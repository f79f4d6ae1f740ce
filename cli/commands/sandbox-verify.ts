import { statSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, withSession } from '../../app/context.ts';
import { ForgeError, InvalidInputError } from '../../app/errors.ts';
import { type StageResult, type VerifyReport, verifyFolder } from '../../app/verify-folder.ts';
import { envAssignment } from '../args.ts';
import { printJson, reportError, say } from '../output.ts';

/**
 * forge sandbox verify <tool-dir> [--json] [--name <tool-name>] [--no-live] [--env NAME[=VALUE]]... [--live-input '<json>']
 * Runs the three verification stages on a tool folder (tool.ts, tool.test.ts, optional
 * api-spec.json) and prints a per-stage summary, or one JSON line with --json.
 * Exit code 0 when the tool passed, 1 when it did not (or could not be verified).
 * Host variables reach the live call only when named with --env, as in `sandbox exec`.
 * When Forge is up, its sandbox worker verifies (warm checker and pool); else this process does,
 * saying so in one line on stderr.
 */
const USAGE =
  "usage: forge sandbox verify <tool-dir> [--json] [--name <tool-name>] [--no-live] [--env NAME[=VALUE]]... [--live-input '<json>']";

export interface SandboxVerifyArgs {
  dir: string;
  json: boolean;
  name?: string;
  live: boolean;
  env: Record<string, string>;
  liveInput?: unknown;
}

export function parseSandboxVerifyArgs(args: string[], hostEnv: Record<string, string | undefined> = process.env): SandboxVerifyArgs {
  const out: SandboxVerifyArgs = { dir: '', json: false, live: true, env: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new InvalidInputError('arguments', `${arg} needs a value. ${USAGE}`);
      return v;
    };
    if (arg === '--json') out.json = true;
    else if (arg === '--no-live') out.live = false;
    else if (arg === '--name') out.name = value();
    else if (arg === '--env') {
      const [name, v] = envAssignment(value(), hostEnv);
      if (v !== undefined) out.env[name] = v;
    } else if (arg === '--live-input') {
      const text = value();
      try {
        out.liveInput = JSON.parse(text);
      } catch (err) {
        throw new InvalidInputError('--live-input', `not valid JSON (${(err as Error).message})`);
      }
    } else if (arg.startsWith('--')) throw new InvalidInputError('arguments', `unknown option ${arg}. ${USAGE}`);
    else if (!out.dir) out.dir = path.resolve(arg);
    else throw new InvalidInputError('arguments', `unexpected argument ${JSON.stringify(arg)}. ${USAGE}`);
  }
  if (!out.dir) throw new InvalidInputError('arguments', `missing <tool-dir>. ${USAGE}`);
  toolDirOf(out.dir);
  return out;
}

/** The folder a person named, checked before anything reads it: a file or a missing path gets a hint, exit 2, not a raw ENOTDIR. */
function toolDirOf(dir: string): void {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat)
    throw new ForgeError(
      `<tool-dir> ${dir} does not exist`,
      'USAGE',
      'pass a tool folder (tool.ts, tool.test.ts, an optional api-spec.json), e.g. forge sandbox verify examples/tools/fetch_exchange_rate',
    );
  if (!stat.isDirectory())
    throw new ForgeError(
      `<tool-dir> ${dir} is a file: sandbox verify takes the tool's folder`,
      'USAGE',
      `verify the folder that holds it: forge sandbox verify ${path.dirname(dir)}; or run the tool once: forge sandbox exec ${dir} --input '<json>'`,
    );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function stageLine(s: StageResult): string {
  const tests = s.tests?.length ? `  ${s.tests.filter((t) => t.passed).length}/${s.tests.length} tests` : '';
  const findings = s.findings?.length ? `  ${s.findings.length} finding${s.findings.length > 1 ? 's' : ''}` : '';
  const reason = s.status !== 'passed' && s.reason ? `  — ${s.reason.split('\n')[0]}` : '';
  return `  ${s.stage.padEnd(12)} ${s.status.toUpperCase().padEnd(7)}${tests}${findings}${s.durationMs ? ` (${seconds(s.durationMs)})` : ''}${reason}`.trimEnd();
}

function stageDetails(s: StageResult): string[] {
  const lines: string[] = [];
  for (const f of s.findings ?? []) {
    lines.push(`      ${f.file}${f.line ? `:${f.line}:${f.column}` : ''} [${f.rule}] ${f.message}`);
    if (f.snippet) lines.push(`        > ${f.snippet}`);
  }
  for (const t of (s.tests ?? []).filter((x) => !x.passed)) {
    lines.push(`      FAIL ${t.name}`);
    for (const l of (t.error ?? '').split('\n').slice(0, 8)) lines.push(`        ${l}`);
  }
  return lines;
}

function printHuman(dir: string, report: VerifyReport): void {
  say(`${report.passed ? 'verified' : 'NOT verified'}: ${dir}`);
  for (const s of report.stages) {
    say(stageLine(s));
    for (const l of stageDetails(s)) say(l);
  }
}

export async function sandboxVerifyCommand(args: string[]): Promise<number> {
  const json = args.includes('--json');
  try {
    const parsed = parseSandboxVerifyArgs(args);
    const report = await withSession(loadConfig(), (session) =>
      verifyFolder(
        session,
        { dir: parsed.dir, name: parsed.name, live: parsed.live, env: parsed.env, liveInput: parsed.liveInput },
        { onLocal: (why) => process.stderr.write(`verifying in this process: ${why}\n`) },
      ),
    );
    const failed = report.stages.find((s) => s.status === 'failed');
    if (json) {
      printJson({ ok: report.passed, dir: parsed.dir, ...(failed ? { failedStage: failed.stage, reason: failed.reason } : {}), ...report });
    } else {
      printHuman(parsed.dir, report);
      if (failed) process.stderr.write(`failed at the ${failed.stage} stage: ${failed.reason ?? 'see above'}\n`);
    }
    return report.passed ? 0 : 1;
  } catch (err) {
    return reportError(err, json);
  }
}
