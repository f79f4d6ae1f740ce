import { listTools } from '../../app/catalog.ts';
import type { ForgeConfig } from '../../app/context.ts';
import { capturingJson, printJson, say } from '../output.ts';
import { runCommand } from './run.ts';
import { upCommand } from './stack.ts';

// The demo, Forge's main job on embedded defaults (the scripted model, scenarios/*.json):
//  1. a task needs a tool nobody has: count_words is forged, called with the task's own words, and answers;
//  2. the same ask in other words reuses it, with no forge;
//  3. a slug needs slugify, forged too; its v1 throws on "è" (an edge case its own tests missed), so the
//     task diagnoses the failure, repairs the tool behind the regression gate (v2) and re-runs the call;
//  4. a two-tool chain: slugify's output is count_words' input.
// Run again on the same FORGE_HOME, count_words and slugify are in the catalog: nothing is forged or
// repaired, and the demo says so before it starts rather than quietly showing less.

/** The tools the demo forges on a first run; on a later one it finds them and calls them as they are. */
const DEMO_TOOLS = ['count_words', 'slugify'] as const;
type DemoTool = (typeof DEMO_TOOLS)[number];

interface DemoStep {
  task: string;
  /** what the step shows on a first run */
  shows: string;
  /** the tool the step forges on a first run, and what it shows once that tool is in the catalog (its version) */
  forges?: { tool: DemoTool; again: (version: number) => string };
}

const DEMO_STEPS: DemoStep[] = [
  {
    task: 'how many words are in "the quick brown fox jumps over the lazy dog"?',
    shows: 'a tool nobody has yet: count_words is forged, proven in the sandbox, registered, then called with the words',
    forges: { tool: 'count_words', again: (v) => `count_words is in the catalog already (v${v}): called, nothing forged` },
  },
  { task: 'count the words in "to be or not to be"', shows: 'the same ask in other words: count_words is reused, nothing forged' },
  {
    task: 'make a URL slug of "Crème Brûlée"',
    shows: 'slugify is forged; its v1 fails on "è", so the task repairs it behind the regression gate (v2) and calls it again',
    forges: { tool: 'slugify', again: (v) => `slugify is in the catalog already (v${v}): called as it stands, nothing forged or repaired` },
  },
  {
    task: 'how many characters does the URL slug of "Crème Brûlée" have?',
    shows: "a two-tool chain: slugify's output is count_words' input",
  },
];

/** Each step's heading: its place, its question, and what it shows given the tools the catalog holds already. */
export function demoStepLines(existing: ReadonlyMap<string, number>): string[][] {
  return DEMO_STEPS.map((step, i) => {
    const version = step.forges ? existing.get(step.forges.tool) : undefined;
    const shows = step.forges && version !== undefined ? step.forges.again(version) : step.shows;
    return [`demo ${i + 1}/${DEMO_STEPS.length}: ${step.task}`, `  ${shows}`];
  });
}

/**
 * What differs from a first run, said before the tasks start: the demo's tools this home's catalog
 * holds already are reused, so what README promises (a forge, a repair) does not happen again here.
 * A new home runs it from scratch (after forge down: the services hold the default ports).
 */
export function rerunNote(existing: ReadonlyMap<string, number>, home: string): string | undefined {
  const held = DEMO_TOOLS.filter((t) => existing.has(t));
  if (!held.length) return undefined;
  const names = held.join(' and ');
  return [
    `${names} ${held.length === 1 ? 'is' : 'are'} already in this home's catalog (${home}): the demo reuses ${held.length === 1 ? 'it' : 'them'}, so ${held.length === 1 ? 'it is' : 'they are'} not forged${held.includes('slugify') ? ' or repaired' : ''} this time.`,
    '  To watch the demo from scratch, in a new home: npx forge down && FORGE_HOME=$(mktemp -d) npx forge demo',
  ].join('\n');
}

/** The demo's tools the catalog holds now (archived ones are neither offered nor called), with their current versions. */
async function demoToolsHeld(cfg: ForgeConfig): Promise<Map<string, number>> {
  const tools = await listTools(cfg);
  return new Map(
    tools.filter((t) => (DEMO_TOOLS as readonly string[]).includes(t.name) && t.currentVersion).map((t) => [t.name, t.currentVersion!]),
  );
}

/** forge demo: forge up, then the four tasks, each followed to its end. `forge demo evolve` is demo-evolve.ts. */
export async function demoCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  if (args[0] === 'evolve') return (await import('./demo-evolve.ts')).demoEvolveCommand(cfg, args.slice(1));
  const started = performance.now();
  if (args.includes('--json')) {
    // Each step would print its own line: the demo prints one, with every step's in it.
    const up = await capturingJson(() => upCommand(cfg, args));
    const reused = up.value === 0 ? [...(await demoToolsHeld(cfg)).keys()] : [];
    const tasks: unknown[] = [];
    let code = up.value;
    for (const { task } of DEMO_STEPS) {
      if (code !== 0) break;
      const ran = await capturingJson(() => runCommand(cfg, [task, '--wait', ...args]));
      tasks.push(...ran.lines);
      code = ran.value;
    }
    printJson({ ok: code === 0, up: up.lines[0], reused, tasks, totalMs: Math.round(performance.now() - started) });
    return code;
  }
  const code = await upCommand(cfg, args);
  if (code !== 0) return code;
  const existing = await demoToolsHeld(cfg);
  const note = rerunNote(existing, cfg.home);
  if (note) say(`\n${note}`);
  const headings = demoStepLines(existing);
  for (const [i, { task }] of DEMO_STEPS.entries()) {
    say(`\n${headings[i]!.join('\n')}`);
    const ran = await runCommand(cfg, [task, '--wait', ...args]);
    if (ran !== 0) return ran;
  }
  process.stderr.write(`demo: ${((performance.now() - started) / 1000).toFixed(1)} s in all\n`);
  return 0;
}
