import type { ForgeConfig } from '../../app/context.ts';
import { capturingJson, printJson } from '../output.ts';
import { runCommand } from './run.ts';
import { upCommand } from './stack.ts';

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

/** forge demo: forge up, then the four tasks, each followed to its end. `forge demo evolve` is demo-evolve.ts. */
export async function demoCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  if (args[0] === 'evolve') return (await import('./demo-evolve.ts')).demoEvolveCommand(cfg, args.slice(1));
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
}
