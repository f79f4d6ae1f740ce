import { parseArgs } from 'node:util';
import type { ForgeConfig } from '../../app/context.ts';
import { bringDown, bringUp, checkStack } from '../../app/stack.ts';
import { printJson, say } from '../output.ts';

export async function upCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const steps: string[] = [];
  // Each step is timed from the one before it, so a slow first run shows where its time went.
  const timings: { step: string; ms: number }[] = [];
  const started = performance.now();
  let last = started;
  const { uiUrl, scripted, mcp } = await bringUp(cfg, (m) => {
    const now = performance.now();
    steps.push(m);
    timings.push({ step: m, ms: Math.round(now - last) });
    if (!values.json) say(`  ${m}  (+${((now - last) / 1000).toFixed(1)} s)`);
    last = now;
  });
  const totalMs = Math.round(performance.now() - started);
  if (values.json) printJson({ ok: true, uiUrl, scripted, mcp, steps, timings, totalMs });
  else {
    say(`Forge is up in ${(totalMs / 1000).toFixed(1)} s. Temporal UI: ${uiUrl ?? "(your Temporal cluster's UI)"}`);
    if (scripted) say("No ANTHROPIC_API_KEY is set: the model is Forge's scripted stand-in (offline demo), not Claude.");
    if (mcp) say(`MCP: ${mcp.url} (bearer token: ${mcp.token}), or on stdio: forge mcp — see the README for Claude Code / Claude Desktop.`);
    say(`Try: npx forge run 'how many words are in "a rose is a rose"?' --wait   (reuses count_words once the demo forged it)`);
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
    // one column for the details, however long the longest component's name
    const width = Math.max(...checks.map((c) => c.component.length));
    for (const c of checks) {
      say(`${c.ok ? (c.notice ? 'NOTE' : 'ok  ') : 'FAIL'} ${c.component.padEnd(width)} ${c.detail}`);
      if (!c.ok && c.fix) say(`     ${''.padEnd(width)} fix: ${c.fix}`);
    }
  }
  return ok ? 0 : 1;
}
