/**
 * What every bench shares: percentiles, one aligned table and one JSON line per figure, and the
 * databases benches measure on (an in-memory PGlite, or a scratch database on a real Postgres
 * server). Benches are never run by `npm test`: figures are compared with a baseline measured in
 * the same run, never with an absolute threshold.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import postgres from 'postgres';
import { migrate } from '../infra/migrate.ts';
import { servePglite } from '../infra/pglite-server.ts';
import { ensureDatabaseExists } from '../infra/postgres.ts';
import { freePort } from '../infra/processes.ts';
import type { Sql } from '../services/db.ts';

export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round = (v: number, digits = 1) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  mean: number;
}

export function summary(values: readonly number[]): Summary {
  const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
  return { n: values.length, p50: round(percentile(values, 50)), p95: round(percentile(values, 95)), mean: round(mean) };
}

/** An aligned text table: first column left-aligned, the rest right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** One figure: its table, then its JSON line (`{"bench":…,"figure":…}`), which `npm run bench` collects. */
export function report(bench: string, figure: string, title: string, head: string[], rows: (string | number)[][], json: object): void {
  process.stdout.write(`\n${title}\n${table(head, rows)}\n${JSON.stringify({ bench, figure, ...json })}\n`);
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadavg: os.loadavg().map((l) => round(l, 2)),
  };
}

export interface BenchDb {
  sql: Sql;
  url: string;
  kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

/** A fresh, migrated in-memory PGlite served over the wire protocol, as `forge up` serves it. */
export async function pgliteDb(): Promise<BenchDb> {
  const pglite = await servePglite('memory://', await freePort());
  const sql = postgres(pglite.url, { max: 1, onnotice: () => {} });
  await migrate(sql);
  return {
    sql,
    url: pglite.url,
    kind: 'pglite',
    async close() {
      await sql.end({ timeout: 2 });
      await pglite.stop();
    },
  };
}

/** A fresh, migrated database of its own on the Postgres server at `adminUrl`, dropped by close(). */
export async function postgresDb(adminUrl: string, label: string): Promise<BenchDb> {
  const name = `bench_${label}_${randomBytes(4).toString('hex')}`;
  const url = adminUrl.replace(/\/[^/?]*(\?.*)?$/, `/${name}$1`);
  await ensureDatabaseExists(url);
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  await migrate(sql);
  return {
    sql,
    url,
    kind: 'postgres',
    async close() {
      await sql.end({ timeout: 2 });
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 2 });
    },
  };
}
