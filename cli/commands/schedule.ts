import { parseArgs } from 'node:util';
import { type ForgeConfig, localUser, withSession } from '../../app/context.ts';
import { CURATION_SCHEDULE_ID, listSchedules, pauseSchedule, triggerSchedule, unpauseSchedule } from '../../app/schedule.ts';
import { printJson, say, usageError } from '../output.ts';

const USAGE = `usage: forge schedule [ls] [--json] | forge schedule pause|unpause [<id>] [--reason r] [--json] | forge schedule trigger [<id>] [--json]  (<id> defaults to ${CURATION_SCHEDULE_ID})`;

/** forge schedule ls|pause|unpause|trigger: Forge's Temporal Schedules (the nightly curation of failure evidence). */
export async function scheduleCommand(cfg: ForgeConfig, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const [sub = 'ls', id = CURATION_SCHEDULE_ID, ...extra] = positionals;
  if (extra.length) throw usageError(`unexpected argument ${JSON.stringify(extra[0])}`, USAGE);
  return withSession(cfg, async (session) => {
    if (sub === 'ls') {
      if (positionals.length > 1) throw usageError(`unexpected argument ${JSON.stringify(positionals[1])}: ls lists every schedule`, USAGE);
      const schedules = await listSchedules(session);
      if (values.json) {
        printJson({ ok: true, schedules });
        return 0;
      }
      for (const s of schedules) {
        if (!s.exists) {
          say(`${s.scheduleId}  not created yet: forge up creates it`);
          continue;
        }
        say(
          `${s.scheduleId}  ${s.paused ? 'PAUSED' : 'active'}  ${s.workflowType}  cron "${s.cron}" ${s.timeZone}  overlap ${s.overlap}, catch-up ${Math.round((s.catchupWindowMs ?? 0) / 60_000)} min`,
        );
        if (s.note) say(`  note: ${s.note}`);
        if (s.paused) say('  next: none while paused (forge schedule unpause resumes it)');
        else if (s.nextRuns?.length) say(`  next: ${s.nextRuns.join(', ')}`);
        for (const r of s.recent?.slice(-3) ?? []) say(`  ran:  ${r.takenAt} ${r.workflowId}`);
        if (s.running?.length) say(`  running: ${s.running.join(', ')}`);
        if (s.uiUrl) say(`  ${s.uiUrl}`);
      }
      return 0;
    }
    if (sub === 'pause' || sub === 'unpause') {
      const note = `${sub}d by ${localUser()}${values.reason ? `: ${values.reason}` : ''}`;
      const { changed, ...s } = await (sub === 'pause' ? pauseSchedule : unpauseSchedule)(session, id, note);
      if (values.json) printJson({ ok: true, changed, schedule: s });
      else if (changed) say(`${s.scheduleId}: ${s.paused ? 'paused' : 'active'} (${note})`);
      else
        say(
          `${s.scheduleId} was already ${s.paused ? 'paused' : 'active'}${s.note ? ` (${s.note})` : ''}: nothing changed${s.paused ? '; resume it with: forge schedule unpause' : ''}`,
        );
      return 0;
    }
    if (sub === 'trigger') {
      const t = await triggerSchedule(session, id);
      if (values.json) printJson({ ok: true, ...t });
      else say(`${t.scheduleId}: ${t.workflowId ? `started ${t.workflowId}${t.uiUrl ? `\n  ${t.uiUrl}` : ''}` : (t.note ?? 'triggered')}`);
      return 0;
    }
    throw usageError(`unknown schedule command ${JSON.stringify(sub)}`, USAGE);
  });
}
