import { AuditEntryNotFoundError } from '../domain/audit.ts';
import type { ForgeConfig } from '../domain/config.ts';
import { type AuditEntry, type AuditFilter, getAuditEntry, listAudit, outputHash } from '../services/catalog/audit.ts';
import { withDb } from './db.ts';

export { AUDIT_KINDS, type AuditKind, parseAuditId, type ReplayResult, type ReplayTarget } from '../domain/audit.ts';
export type { AuditEntry, AuditFilter };

/** Audited calls, replays and catalog edits, newest first; works while Forge is frozen. */
export function auditEntries(cfg: ForgeConfig, filter: AuditFilter): Promise<AuditEntry[]> {
  return withDb(cfg, (sql) => listAudit(sql, filter));
}

/** One audit entry, whole, with the hash a replay compares its output by. */
export async function auditEntry(cfg: ForgeConfig, id: number): Promise<{ entry: AuditEntry; outputSha256: string }> {
  const entry = await withDb(cfg, (sql) => getAuditEntry(sql, id));
  if (!entry) throw new AuditEntryNotFoundError(id);
  return { entry, outputSha256: outputHash(entry.output) };
}
