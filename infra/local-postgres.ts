import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { ComponentDownError } from '../domain/errors.ts';
import { log } from '../services/log.ts';

/**
 * A real local Postgres server for the test suite (Debian `postgresql`, on loopback): installed
 * and started when missing, with a `forge` role that may create databases. Returns an admin URL.
 */
export function ensureLocalPostgres(): string {
  if (process.env.FORGE_TEST_DATABASE_URL) return process.env.FORGE_TEST_DATABASE_URL;
  if (!fs.existsSync('/usr/bin/pg_lsclusters')) installPostgres();
  let cluster = listClusters()[0];
  if (!cluster) {
    run('pg_createcluster', ['15', 'main']);
    cluster = listClusters()[0];
  }
  if (!cluster) throw new ComponentDownError('Postgres', 'no cluster could be created', 'run: pg_createcluster 15 main --start');
  if (cluster.status !== 'online') {
    log.info('starting postgres cluster', { version: cluster.version, name: cluster.name });
    run('pg_ctlcluster', [cluster.version, cluster.name, 'start']);
  }
  const sql = `DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'forge') THEN
      CREATE ROLE forge LOGIN SUPERUSER PASSWORD 'forge';
    END IF; END $$;`;
  run('su', ['postgres', '-c', `psql -p ${cluster.port} -q -v ON_ERROR_STOP=1 -c "${sql.replace(/"/g, '\\"').replace(/\$/g, '\\$')}"`]);
  return `postgres://forge:forge@127.0.0.1:${cluster.port}/postgres`;
}

function listClusters(): { version: string; name: string; port: string; status: string }[] {
  const out = execFileSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [version = '', name = '', port = '', status = ''] = line.trim().split(/\s+/);
      return { version, name, port, status };
    });
}

function installPostgres(): void {
  if (process.getuid?.() !== 0) {
    throw new ComponentDownError(
      'Postgres',
      'postgresql is not installed',
      'run as root: apt-get install -y postgresql, or set FORGE_TEST_DATABASE_URL',
    );
  }
  log.info('installing postgresql with apt-get (first run only)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const ok = (args: string[]) => spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
  if (
    !ok(['install', '-y', 'postgresql', 'postgresql-contrib']) &&
    !(ok(['update']) && ok(['install', '-y', 'postgresql', 'postgresql-contrib']))
  ) {
    throw new ComponentDownError('Postgres', 'apt-get install postgresql failed', 'run: apt-get update && apt-get install -y postgresql');
  }
}

function run(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.status !== 0) {
    throw new ComponentDownError('Postgres', `${cmd} ${args.join(' ')} failed: ${res.stderr.trim()}`, 'see /var/log/postgresql/');
  }
}
