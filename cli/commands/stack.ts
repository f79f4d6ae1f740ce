import { parseArgs } from 'node:util';
import type { ForgeConfig } from '../../app/context.ts';
import { bringDown, bringUp, checkStack } from '../../app/stack.ts';
import { printJson, say } from '../output.ts';

export async function upCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const steps: string[] = [];
  const { uiUrl, scripted } = await bringUp(cfg, (m) => {
    steps.push(m);
    if (!values.json) say(`  ${m}`);
  });
  if (values.json) printJson({ ok: true, uiUrl, scripted, steps });
  else {
    say(`Forge is up. Temporal UI: ${uiUrl ?? "(your Temporal cluster's UI)"}`);
    if (scripted) say("No ANTHROPIC_API_KEY is set: the model is Forge's scripted stand-in (offline demo), not Claude.");
    say(`Try: npx forge run 'count the words in "to be or not to be"' --wait   (reuses the tool the demo forged)`);
  }
  return 0;
}

export async function downCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const stopped = await bringDown(cfg);
  if (values.json) printJson({ ok: true, stopped });
  else
    say(
      stopped.length ? `stopped: ${stopped.join(', ')} (dockerd, if Forge started it, is left running)` : "nothing of Forge's was running",
    );
  return 0;
}

export async function doctorCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const checks = await checkStack(cfg);
  const ok = checks.every((c) => c.ok);
  if (values.json) printJson({ ok, checks });
  else {
    for (const c of checks) {
      say(`${c.ok ? 'ok  ' : 'FAIL'} ${c.component.padEnd(14)} ${c.detail}`);
      if (!c.ok && c.fix) say(`     ${''.padEnd(14)} fix: ${c.fix}`);
    }
  }
  return ok ? 0 : 1;
}
