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
import { failuresCommand, feedbackCommand } from './commands/evidence.ts';
import { evolveCommand } from './commands/evolve.ts';
import { forgeCommand } from './commands/forge.ts';
import { improveCommand } from './commands/improve.ts';
import { runCommand } from './commands/run.ts';
import { scheduleCommand } from './commands/schedule.ts';
import { sessionsCommand } from './commands/sessions.ts';
import { doctorCommand, downCommand, upCommand } from './commands/stack.ts';
import { reportError, say } from './output.ts';

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
  forge mcp [--http [--host h] [--port n]]
                                         Forge's catalog as an MCP server: on stdio (for an MCP client to spawn),
                                         or the Streamable HTTP endpoint forge up runs (bearer token required)
  forge sandbox exec <tool-file> --input '<json>' [--json]
  forge sandbox verify <tool-dir> [--json]
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
    const started = performance.now();
    const code = await upCommand(cfg, args);
    if (code !== 0) return code;
    for (const task of DEMO_TASKS) {
      const ran = await runCommand(cfg, [task, '--wait', ...args]);
      if (ran !== 0) return ran;
    }
    if (!args.includes('--json')) process.stderr.write(`demo: ${((performance.now() - started) / 1000).toFixed(1)} s in all\n`);
    return 0;
  },
  worker: (cfg) => runWorkerInForeground(cfg),
  async sandbox(_cfg, args) {
    const [sub, ...rest] = args;
    if (sub === 'exec') return (await import('./commands/sandbox-exec.ts')).sandboxExecCommand(rest);
    if (sub === 'verify') return (await import('./commands/sandbox-verify.ts')).sandboxVerifyCommand(rest);
    process.stderr.write(`unknown sandbox command ${JSON.stringify(sub)}\n${usage}`);
    return 2;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    say(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`unknown command ${JSON.stringify(name)}\n${usage}`);
    return 2;
  }
  const json = args.includes('--json');
  try {
    return await command(loadConfig(), args);
  } catch (err) {
    return reportError(err, json);
  }
}
