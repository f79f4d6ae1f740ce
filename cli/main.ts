import { type ForgeConfig, loadConfig } from '../app/context.ts';
import { runWorkerInForeground } from '../app/worker.ts';
import { auditCommand } from './commands/audit.ts';
import {
  answerCommand,
  approvalsCommand,
  budgetCommand,
  decideCommand,
  freezeCommand,
  thawCommand,
  toolsCommand,
} from './commands/catalog.ts';
import { demoEvolveCommand } from './commands/demo-evolve.ts';
import { failuresCommand, feedbackCommand } from './commands/evidence.ts';
import { evolveCommand } from './commands/evolve.ts';
import { forgeCommand } from './commands/forge.ts';
import { improveCommand } from './commands/improve.ts';
import { runCommand } from './commands/run.ts';
import { scheduleCommand } from './commands/schedule.ts';
import { sessionsCommand } from './commands/sessions.ts';
import { doctorCommand, downCommand, upCommand } from './commands/stack.ts';
import { capturingJson, EXIT, printJson, reportError, say, usageError } from './output.ts';

const usage = `forge — durable tool forging on Temporal

  forge up [--json]                      start whatever is missing (Docker, Postgres, Temporal, worker)
  forge down [--json]                    stop what forge up started
  forge doctor [--json]                  check each component; says how to fix what is wrong
  forge run "<task>" [--session id] [--wait] [--json]
                                         start a task workflow (--wait follows it to the end;
                                         --session continues that conversation, or starts it)
  forge sessions [ls] | show <id> [--json]
                                         conversations of tasks, and each one's tasks in order
  forge demo                             forge up, then the demo: forge a tool, reuse it, repair one, chain two
  forge demo evolve                      self-evolution end to end: failure → curation → patch → replay → consent → swap → probe → promoted
  forge forge "<need>" [--name n] [--docs file] [--openapi file.json] [--wait] [--json]
                                         forge a new tool (spec, tests, code, sandbox proof, register)
  forge improve <tool> [--reason r] [--wait] [--json]
                                         rewrite a tool behind the regression gate (promote, or keep the current version)
  forge feedback <task-id> --bad "<what should have happened>" [--expect-tool <name>] [--expect-answer "<text>"] [--json]
                                         a person's word on a task, as failure evidence for self-evolution
  forge failures [ls] [--since 24h] [--json] | show <id> [--json]
                                         failure evidence: failed tasks, escalated or rejected calls, feedback
  forge schedule [ls] | pause | unpause | trigger [--json]
                                         the nightly curation of failure evidence (a Temporal Schedule)
  forge evolve ls | show <id> [--json]   self-evolution's candidates: the diff, each refusal, the replay table
  forge evolve approve|reject <id> [--wait]  consent to a verified candidate (checked against its image digest)
  forge evolve history | rollback <rev>  the harness's git history (FORGE_HOME/harness-history); back to a revision
  forge tools ls [--all] | show <name> | history <name> [--json]
  forge tools score [<name>] [--json]    the evaluator's quality score: all tools, or one in detail
  forge tools pin|unpin <name> [--reason r]
                                         a pinned tool is never rewritten automatically
  forge tools rollback <name> [--to <version>] [--reason r]
                                         make an earlier version current again (default: the previous verified one)
  forge tools archive <name> --reason r  no longer offered; kept on disk and in history
  forge approvals [--json]               what waits for a person
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
  forge sandbox exec <tool-file> --input '<json>' [--json]
  forge sandbox verify <tool-dir> [--json]

  --json prints one JSON line. Exit codes: 0 ok, 1 failed or refused, 2 bad usage, 3 a component down.
`;

type Command = (cfg: ForgeConfig, args: string[]) => Promise<number>;

// The demo, Forge's main job on embedded defaults (the scripted model, scenarios/*.json):
//  1. a task needs a tool nobody has: count_words is forged, called with the task's own words, and answers;
//  2. the same ask in other words reuses it, with no forge;
//  3. a slug needs slugify, forged too; its v1 throws on "è" (an edge case its own tests missed), so the
//     task diagnoses the failure, repairs the tool behind the regression gate (v2) and re-runs the call;
//  4. a two-tool chain: slugify's output is count_words' input.
const DEMO_TASKS = [
  'how many words are in "the quick brown fox jumps over the lazy dog"?',
  'count the words in "to be or not to be"',
  'make a URL slug of "Crème Brûlée"',
  'how many characters does the URL slug of "Crème Brûlée" have?',
];

const commands: Record<string, Command> = {
  up: upCommand,
  down: downCommand,
  doctor: doctorCommand,
  run: runCommand,
  sessions: sessionsCommand,
  forge: forgeCommand,
  improve: improveCommand,
  evolve: evolveCommand,
  feedback: feedbackCommand,
  failures: failuresCommand,
  schedule: scheduleCommand,
  tools: toolsCommand,
  approvals: approvalsCommand,
  approve: decideCommand(true),
  reject: decideCommand(false),
  answer: answerCommand,
  freeze: freezeCommand,
  thaw: thawCommand,
  budget: budgetCommand,
  audit: auditCommand,
  async demo(cfg, args) {
    if (args[0] === 'evolve') return demoEvolveCommand(cfg, args.slice(1));
    const started = performance.now();
    if (args.includes('--json')) {
      // Each step would print its own line: the demo prints one, with every step's in it.
      const up = await capturingJson(() => upCommand(cfg, args));
      const tasks: unknown[] = [];
      let code = up.value;
      for (const task of DEMO_TASKS) {
        if (code !== 0) break;
        const ran = await capturingJson(() => runCommand(cfg, [task, '--wait', ...args]));
        tasks.push(...ran.lines);
        code = ran.value;
      }
      printJson({ ok: code === 0, up: up.lines[0], tasks, totalMs: Math.round(performance.now() - started) });
      return code;
    }
    const code = await upCommand(cfg, args);
    if (code !== 0) return code;
    for (const task of DEMO_TASKS) {
      const ran = await runCommand(cfg, [task, '--wait', ...args]);
      if (ran !== 0) return ran;
    }
    process.stderr.write(`demo: ${((performance.now() - started) / 1000).toFixed(1)} s in all\n`);
    return 0;
  },
  worker(cfg, args) {
    // A server in the foreground has no result to print: its logs already are JSON lines on stderr.
    if (args.length) throw usageError(`forge worker takes no arguments (got ${args.join(' ')}); it runs until stopped`, 'forge worker');
    return runWorkerInForeground(cfg);
  },
  async sandbox(_cfg, args) {
    const [sub, ...rest] = args;
    if (sub === 'exec') return (await import('./commands/sandbox-exec.ts')).sandboxExecCommand(rest);
    if (sub === 'verify') return (await import('./commands/sandbox-verify.ts')).sandboxVerifyCommand(rest);
    throw usageError(
      `unknown sandbox command ${JSON.stringify(sub ?? '')}`,
      "forge sandbox exec <tool-file> --input '<json>' | forge sandbox verify <tool-dir>",
    );
  },
};

/** The usage lines of one command, from the help text: the fix shown when its command line does not parse. */
export function usageOf(name: string): string | undefined {
  const lines = usage
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => new RegExp(`^forge (?:\\S+\\|)*${name}(?:\\|\\S+)*(?:\\s|$)`).test(l))
    .map((l) => l.split(/\s{3,}/)[0]!);
  return lines.length ? lines.join('  |  ') : undefined;
}

/** Surfaces of their own that bin/forge.mjs starts instead of this CLI: servers with no result line. */
const SERVERS = ['mcp', 'dashboard'];

/** The commands `forge` knows (for tests that walk them all). */
export const commandNames = (): string[] => [...Object.keys(commands), ...SERVERS];

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const json = args.includes('--json');
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    if (json) printJson({ ok: true, commands: commandNames(), usage });
    else say(usage);
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands[name];
  if (!command) {
    if (json) return reportError(usageError(`unknown command ${JSON.stringify(name)}`), true);
    process.stderr.write(`unknown command ${JSON.stringify(name)}\n${usage}`);
    return EXIT.usage;
  }
  try {
    return await command(loadConfig(), args);
  } catch (err) {
    return reportError(err, json, usageOf(name));
  }
}
