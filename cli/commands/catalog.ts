import os from 'node:os';
import { parseArgs } from 'node:util';
import type { ForgeConfig } from '../../domain/config.ts';
import { ForgeError, InvalidInputError } from '../../domain/errors.ts';
import { findApproval, pendingApprovals } from '../../services/control/approvals.ts';
import { createKillSwitch, freezeForge } from '../../services/control/kill-switch.ts';
import { createRegistry } from '../../services/catalog/registry.ts';
import { dockerClient } from '../../infra/docker.ts';
import { sandboxDeploymentName, toolsDir } from '../../services/config.ts';
import { temporalClient } from '../../infra/temporal.ts';
import { decideApprovalUpdate } from '../../workflows/definitions.ts';
import { withDb } from '../../app/db.ts';
import { printJson, say } from '../output.ts';

// Read-only and human-in-the-loop commands: they work while Forge is frozen.

const jsonFlag = { json: { type: 'boolean' as const, default: false } };

export async function toolsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
  const [sub = 'ls', name] = positionals;
  return withDb(cfg, async (sql) => {
    const registry = createRegistry({ sql, root: toolsDir(cfg) });
    if (sub === 'ls') {
      const tools = await registry.list();
      const withStats = await Promise.all(tools.map(async (t) => ({ ...t, stats: await registry.stats(t.name) })));
      if (values.json) printJson({ ok: true, tools: withStats });
      else if (!tools.length) say('no tools yet: forge one with  forge forge "<what the tool must do>"');
      else for (const t of withStats) say(`${t.name.padEnd(28)} v${t.currentVersion ?? '-'}  ${t.status.padEnd(11)} ${t.stats.level.padEnd(12)} ${t.sideEffect.padEnd(5)} ${t.stats.invocations} calls  ${t.description.slice(0, 60)}`);
      return 0;
    }
    if (!name) throw new InvalidInputError('command', `usage: forge tools ${sub} <name> [--json]`);
    if (sub === 'show') {
      const details = await registry.show(name);
      if (values.json) printJson({ ok: true, tool: details });
      else {
        say(`${details.name} v${details.currentVersion ?? '-'} (${details.status}, trust ${details.stats.level})`);
        say(`  ${details.description}`);
        say(`  side effect: ${details.sideEffect}${details.destructive ? ', destructive' : ''}`);
        say(`  permissions: network ${JSON.stringify(details.manifest?.permissions.network ?? [])}, env ${JSON.stringify(details.manifest?.permissions.env ?? [])}`);
        say(`  calls: ${details.stats.invocations}, success ${(details.stats.successRate * 100).toFixed(0)}%, avg ${details.stats.avgLatencyMs ?? '-'} ms`);
        say(`  folder: ${details.dir ?? '-'}`);
      }
      return 0;
    }
    if (sub === 'history') {
      const history = await registry.history(name);
      if (values.json) printJson({ ok: true, name, history });
      else
        for (const h of history) {
          say(`v${h.version} ${h.current ? '(current) ' : ''}${h.status} by ${h.createdBy} at ${new Date(h.createdAt).toISOString()} ${h.onDisk !== 'same' ? `[on disk: ${h.onDisk}]` : ''}`);
          if (h.diff) say(h.diff.replace(/^/gm, '    '));
        }
      return 0;
    }
    throw new InvalidInputError('command', `unknown tools command ${JSON.stringify(sub)}: use ls, show <name> or history <name>`);
  });
}

export async function approvalsCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const pending = await withDb(cfg, pendingApprovals);
  if (values.json) printJson({ ok: true, pending });
  else if (!pending.length) say('nothing waits for approval');
  else for (const a of pending) say(`${a.id}\n    ${a.kind}${a.tool ? ` ${a.tool}` : ''}: ${a.summary}`);
  return 0;
}

export function decideCommand(approve: boolean) {
  return async (cfg: ForgeConfig, args: string[]): Promise<number> => {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: jsonFlag });
    const [id] = positionals;
    if (!id) throw new InvalidInputError('command', `usage: forge ${approve ? 'approve' : 'reject'} <approval-id> (list them with: forge approvals)`);
    const row = await withDb(cfg, (sql) => findApproval(sql, id));
    if (!row) throw new ForgeError(`no approval ${id}`, 'APPROVAL_NOT_FOUND', 'list pending approvals with: forge approvals');
    if (row.status !== 'pending') throw new ForgeError(`approval ${id} is already ${row.status}${row.decided_by ? ` (by ${row.decided_by})` : ''}`, 'APPROVAL_DECIDED');
    const client = await temporalClient(cfg);
    try {
      const by = process.env.FORGE_USER ?? os.userInfo().username;
      const res = await client.workflow.getHandle(row.workflow_id).executeUpdate(decideApprovalUpdate, { args: [{ approvalId: id, approve, by }] }).catch((err: Error) => {
        throw new ForgeError(`workflow ${row.workflow_id} refused the decision: ${err.cause instanceof Error ? err.cause.message : err.message}`, 'APPROVAL_REFUSED', 'check the id with: forge approvals');
      });
      if (values.json) printJson({ ok: true, ...res, workflowId: row.workflow_id, by });
      else say(`${approve ? 'approved' : 'rejected'} ${id} (workflow ${row.workflow_id})`);
      return 0;
    } finally {
      await client.connection.close();
    }
  };
}

export async function freezeCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...jsonFlag, reason: { type: 'string' } } });
  const by = process.env.FORGE_USER ?? os.userInfo().username;
  const { killedSandboxes: killed } = await withDb(cfg, (sql) => freezeForge({ sql, docker: dockerClient(cfg), deployment: sandboxDeploymentName(cfg), by, reason: values.reason }));
  if (values.json) printJson({ ok: true, frozen: true, by, killedSandboxes: killed });
  else say(`Forge is frozen: side effects are refused, ${killed} sandbox container(s) killed. Read-only commands still work. Resume with: forge thaw`);
  return 0;
}

export async function thawCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const by = process.env.FORGE_USER ?? os.userInfo().username;
  await withDb(cfg, (sql) => createKillSwitch(sql).thaw(by));
  if (values.json) printJson({ ok: true, frozen: false, by });
  else say('Forge is thawed: waiting workflows resume within seconds.');
  return 0;
}

export async function budgetCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: jsonFlag });
  const runs = await withDb(cfg, (sql) => sql<{ workflow_id: string; name: string | null; status: string; created_at: Date }[]>`
    select workflow_id, name, status, created_at from forge_runs
    where created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc' order by created_at`);
  const used = runs.filter((r) => r.status === 'running' || r.status === 'registered').length;
  const limit = cfg.FORGE_DAILY_FORGE_BUDGET;
  if (values.json) printJson({ ok: true, limit, usedToday: used, remaining: Math.max(0, limit - used), runs });
  else {
    say(`forge budget: ${used} of ${limit} new tools used today (UTC); past that, forging waits for  forge approve <id>`);
    for (const r of runs) say(`  ${r.workflow_id}  ${r.name ?? '(unnamed)'}  ${r.status}`);
  }
  return 0;
}
