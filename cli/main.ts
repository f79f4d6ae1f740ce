import { readFileSync } from 'node:fs';
import type { ForgeConfig } from '../app/context.ts';
import { EXIT, printJson, reportError, say, usageError } from './output.ts';

// Start-up cost (issue 14): this module imports nothing heavy. Each command's module, and with it the
// use cases and packages it needs (the Temporal client, dockerode, TypeScript, …), is imported only
// when that command runs, so `forge help` and `forge --version` load next to nothing and
// `forge tools ls` does not pay for the sandbox or the worker. The help text below is the command
// list a person reads; `commands` is the one the CLI dispatches on.

const usage = `forge — durable tool forging on Temporal

  forge up [--json]                      start whatever is missing (Docker, Postgres, Temporal, worker)
  forge down [--json]                    stop what forge up started
  forge doctor [--json]                  check each component; says how to fix what is wrong
  forge run "<task>" [--session id] [--wait] [--json] [--max-turns n] [--max-tool-calls n] [--max-tokens n]
                                         start a task workflow (--wait follows it to the end;
                                         --session continues that conversation, or starts it;
                                         the bounds default to 8 turns, 16 tool calls, 300k tokens)
  forge tasks [ls] [--limit n] | show <id> [--wait] [--json]
                                         recent tasks; one task as it stands (status, answer, calls),
                                         or followed to its end with --wait, as forge run --wait does
  forge sessions [ls] [--limit n] | show <id> [--json]
                                         conversations of tasks, and each one's tasks in order
  forge demo                             forge up, then the demo: forge a tool, reuse it, repair one, chain two
  forge demo evolve                      self-evolution end to end: failure → curation → patch → replay → consent → swap → probe → promoted
  forge forge "<need>" [--name n] [--docs file] [--openapi file.json] [--wait] [--json]
                                         forge a new tool (spec, tests, code, sandbox proof, register)
  forge forges [ls] [--limit n] | show <id> [--wait] [--json]
                                         recent forges; one forge as it stands (its phase, or what it came to),
                                         or followed to its end with --wait, as forge forge --wait does
  forge improve <tool> [--reason r] [--wait] [--json]
                                         rewrite a tool behind the regression gate (promote, or keep the current version)
  forge improve ls [--limit n] | show <id|tool> [--wait] [--json]
                                         recent improve cycles; one as it stands (a tool: its latest), or followed to
                                         its end with --wait, as forge improve --wait does (a tool named ls or show: --tool)
  forge feedback <task-id> --bad "<what should have happened>" [--expect-tool <name>] [--expect-answer "<text>"] [--json]
                                         a person's word on a task, as failure evidence for self-evolution
  forge failures [ls] [--since 24h] [--limit n] [--json] | show <id> [--json]
                                         failure evidence: failed tasks, escalated or rejected calls, feedback
  forge schedule [ls] [--json] | pause|unpause [<id>] [--reason r] | trigger [<id>]
                                         the nightly curation of failure evidence (a Temporal Schedule;
                                         <id> defaults to forge-nightly-curation)
  forge evolve ls | show <id> [--json]   self-evolution's candidates: the diff, each refusal, the replay table
  forge evolve approve|reject <id> [--wait]  consent to a verified candidate (checked against its image digest)
  forge evolve history | rollback <rev>  the harness's git history (FORGE_HOME/harness-history); back to a revision
  forge tools ls [--all] | show <name> | history <name> [--json]
  forge tools score [<name>] [--json]    the evaluator's quality score: all tools, or one in detail
  forge tools pin|unpin <name> [--reason r]
                                         a pinned tool is never rewritten automatically
  forge tools rollback <name> [--to <version>] [--reason r]
                                         make an earlier version current again (default: the previous verified one)
  forge tools archive <name> --reason r   no longer offered; kept on disk and in history
  forge approvals [--json] | show <id> [--json]
                                         what waits for a person (a summary on one line); one approval whole
  forge approve|reject <id> [--json]     answer a pending approval
  forge answer <id> "<text>" [--json]    answer a question the agent asked (ask_person)
  forge freeze [--reason r] | thaw       kill switch: stop all side effects / resume
  forge budget [--json]                  today's forge budget
  forge audit [--tool n] [--workflow id] [--kind k] [--limit n] [--json]
                                         audited calls, newest first (reasoning, task, input, output)
  forge audit show <id> [--json]         one audit entry, whole
  forge audit replay <id> [--allow-write] [--json]
                                         re-run that call in the sandbox; compare outputs (exit 1 if they differ)
  forge worker                           run a worker in the foreground
  forge dashboard [--host h] [--port n]  the web dashboard (forge up runs it): catalog, plots, approvals, kill switch, audit
  forge mcp [--http [--host h] [--port n]]
                                         Forge's catalog as an MCP server: on stdio (for an MCP client to spawn),
                                         or the Streamable HTTP endpoint forge up runs (bearer token required)
  forge sandbox exec <tool-file> --input '<json>' [--env NAME[=VALUE]]... [--timeout <ms>] [--json]
                                         run a tool once in a fresh sandbox container
  forge sandbox verify <tool-dir> [--name <tool-name>] [--no-live] [--env NAME[=VALUE]]... [--live-input '<json>'] [--json]
                                         run the verification stages on a tool folder
  forge --version [--json]               Forge's version

  --json prints one JSON line. Exit codes: 0 ok, 1 failed or refused, 2 bad usage, 3 a component down.
`;

type Command = (cfg: ForgeConfig, args: string[]) => Promise<number>;

/** Each command's implementation, imported on first use (a static import here would load it for every command). */
const commands: Record<string, () => Promise<Command>> = {
  up: async () => (await import('./commands/stack.ts')).upCommand,
  down: async () => (await import('./commands/stack.ts')).downCommand,
  doctor: async () => (await import('./commands/stack.ts')).doctorCommand,
  run: async () => (await import('./commands/run.ts')).runCommand,
  tasks: async () => (await import('./commands/tasks.ts')).tasksCommand,
  sessions: async () => (await import('./commands/sessions.ts')).sessionsCommand,
  forge: async () => (await import('./commands/forge.ts')).forgeCommand,
  forges: async () => (await import('./commands/forges.ts')).forgesCommand,
  improve: async () => (await import('./commands/improve.ts')).improveCommand,
  evolve: async () => (await import('./commands/evolve.ts')).evolveCommand,
  feedback: async () => (await import('./commands/evidence.ts')).feedbackCommand,
  failures: async () => (await import('./commands/evidence.ts')).failuresCommand,
  schedule: async () => (await import('./commands/schedule.ts')).scheduleCommand,
  tools: async () => (await import('./commands/tools.ts')).toolsCommand,
  approvals: async () => (await import('./commands/approvals.ts')).approvalsCommand,
  approve: async () => (await import('./commands/approvals.ts')).decideCommand(true),
  reject: async () => (await import('./commands/approvals.ts')).decideCommand(false),
  answer: async () => (await import('./commands/approvals.ts')).answerCommand,
  freeze: async () => (await import('./commands/control.ts')).freezeCommand,
  thaw: async () => (await import('./commands/control.ts')).thawCommand,
  budget: async () => (await import('./commands/control.ts')).budgetCommand,
  audit: async () => (await import('./commands/audit.ts')).auditCommand,
  demo: async () => (await import('./commands/demo.ts')).demoCommand,
  worker: async () => (await import('./commands/worker.ts')).workerCommand,
  sandbox: async () => sandboxCommand,
};

async function sandboxCommand(_cfg: ForgeConfig, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'exec') return (await import('./commands/sandbox-exec.ts')).sandboxExecCommand(rest);
  if (sub === 'verify') return (await import('./commands/sandbox-verify.ts')).sandboxVerifyCommand(rest);
  throw usageError(`unknown sandbox command ${JSON.stringify(sub ?? '')}`, usageOf('sandbox'));
}

/** A help-text line that is one of this command's (`forge approve|reject …` is approve's and reject's). */
const commandLine = (name: string) => new RegExp(`^forge (?:\\S+\\|)*${name}(?:\\|\\S+)*(?:\\s|$)`);

/** The usage lines of one command, from the help text: the fix shown when its command line does not parse. */
export function usageOf(name: string): string | undefined {
  const own = commandLine(name);
  const lines = usage
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => own.test(l))
    .map((l) => l.split(/\s{3,}/)[0]!);
  return lines.length ? lines.join('  |  ') : undefined;
}

/**
 * One command's part of the help text: its usage lines with what they do (`forge run --help`), or
 * undefined for a name the help text does not list.
 */
export function helpOf(name: string): string | undefined {
  const own = commandLine(name);
  const lines: string[] = [];
  let inside = false;
  for (const line of usage.split('\n')) {
    // A command's line starts "  forge …"; what it does continues on lines indented further.
    if (/^ {2}forge /.test(line)) inside = own.test(line.trim());
    else if (!/^ {4,}\S/.test(line)) inside = false;
    if (inside) lines.push(line);
  }
  return lines.length ? `usage:\n${lines.join('\n')}\n` : undefined;
}

/** `--help` or `-h` among a command's arguments (before a `--`, after which everything is an argument). */
const asksForHelp = (args: string[]) => {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

/** Surfaces of their own that bin/forge.mjs starts instead of this CLI: servers with no result line. */
const SERVERS = ['mcp', 'dashboard'];

/** The commands `forge` knows (for tests that walk them all). */
export const commandNames = (): string[] => [...Object.keys(commands), ...SERVERS];

/** Forge's version, from package.json (bin/forge.mjs answers `forge --version` itself, before tsx; this is `forge --version --json`). */
export function forgeVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(pkg.version ?? 'unknown');
}

let quietOnClosedPipe = false;

/**
 * A reader that stops early (`forge failures | head -3`) closes the pipe under a command still
 * printing: stop quietly, as Unix tools do, instead of an unhandled EPIPE and its stack trace.
 */
function exitQuietlyOnClosedPipe(): void {
  if (quietOnClosedPipe) return;
  quietOnClosedPipe = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
}

export async function main(argv: string[]): Promise<number> {
  exitQuietlyOnClosedPipe();
  const [name, ...args] = argv;
  const json = args.includes('--json');
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    if (json) printJson({ ok: true, commands: commandNames(), usage });
    else say(usage);
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version') {
    if (json) printJson({ ok: true, version: forgeVersion() });
    else say(`forge ${forgeVersion()}`);
    return EXIT.ok;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    if (json) return reportError(usageError(`unknown command ${JSON.stringify(name)}`), true);
    process.stderr.write(`unknown command ${JSON.stringify(name)}\n${usage}`);
    return EXIT.usage;
  }
  if (asksForHelp(args)) {
    // Answered before the command parses its options: it does not list --help among them.
    const help = helpOf(name) ?? usage;
    if (json) printJson({ ok: true, command: name, usage: help });
    else say(help.trimEnd());
    return EXIT.ok;
  }
  try {
    const [command, { loadConfig, commandLogLevel }] = await Promise.all([load(), import('../app/context.ts')]);
    commandLogLevel();
    return await command(loadConfig(), args);
  } catch (err) {
    return reportError(err, json, usageOf(name));
  }
}
