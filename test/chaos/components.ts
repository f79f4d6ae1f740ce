/**
 * The components a chaos run restarts mid-cycle, each its own instance so nothing else on the
 * machine (the suite's shared Temporal and PGlite, the system's Postgres cluster and dockerd, other
 * people's runs) is disturbed: a Temporal dev server, a PGlite server process, a Postgres cluster
 * of its own (Debian's pg_createcluster) and a dockerd with its own socket, data and exec roots.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { dockerAnswers, dockerClient } from '../../infra/docker.ts';
import { ensureLocalPostgres } from '../../infra/local-postgres.ts';
import { freePort, portOpen, sleep, waitFor } from '../../infra/processes.ts';
import { devServerArgs } from '../../infra/temporal.ts';

export type ComponentName = 'temporal' | 'pglite' | 'postgres' | 'docker';

export interface Component {
  name: ComponentName;
  /** Stop it (as a crash or an operator would) and start it again on the same address and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** A child process that must run until stopped; stop waits for its exit (it writes its files until then). */
function spawnService(command: string, args: string[], logPath: string): ChildProcess {
  const out = fs.openSync(logPath, 'a');
  const child = spawn(command, args, { stdio: ['ignore', out, out], cwd: root });
  fs.closeSync(out);
  return child;
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface TemporalServer extends Component {
  address: string;
}

/** A Temporal dev server with its history in dir/temporal.db; a restart is a SIGTERM and a start on the same file. */
export async function startTemporal(cli: string, dir: string): Promise<TemporalServer> {
  const port = await freePort();
  const args = devServerArgs({
    dbFile: path.join(dir, 'temporal.db'),
    port,
    uiPort: await freePort(),
    namespace: 'default',
    headless: true,
  });
  const log = path.join(dir, 'temporal.log');
  const start = async () => {
    const child = spawnService(cli, args, log);
    await waitFor('the chaos run’s Temporal dev server', () => portOpen(port), 60_000, log);
    return child;
  };
  let child = await start();
  return {
    name: 'temporal',
    address: `127.0.0.1:${port}`,
    async restart() {
      await stopChild(child, 'SIGTERM');
      child = await start();
    },
    stop: () => stopChild(child, 'SIGTERM'),
  };
}

export interface Database extends Component {
  /** the database Forge uses */
  url: string;
}

/**
 * PGlite served as its own process (infra/pglite-server.ts, as `forge up` runs it). A restart is a
 * SIGTERM: PGlite keeps its pages in memory and flushes them on close, so a SIGKILL would be a
 * lost database, not a restart; every connection drops either way.
 */
export async function startPgliteServer(dir: string): Promise<Database> {
  const port = await freePort();
  const log = path.join(dir, 'pglite.log');
  const dataDir = path.join(dir, 'pgdata');
  const start = async () => {
    const child = spawnService(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'infra', 'pglite-server.ts'), dataDir, String(port)],
      log,
    );
    await waitFor('the chaos run’s PGlite server', () => portOpen(port), 60_000, log);
    return child;
  };
  let child = await start();
  return {
    name: 'pglite',
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    async restart() {
      await stopChild(child, 'SIGTERM');
      child = await start();
    },
    stop: () => stopChild(child, 'SIGTERM'),
  };
}

function run(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr.trim() || res.stdout.trim()}`);
}

/**
 * A Postgres cluster of the chaos run's own (same server version as the suite's), so a restart
 * never touches anyone else's databases. A restart is `pg_ctlcluster … restart -m immediate`:
 * the server quits without a checkpoint, as after a crash, and recovers from its WAL.
 */
export interface PostgresCluster extends Component {
  /** a new, empty database on the cluster (each round's catalog starts empty) */
  database(name: string): Promise<string>;
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  ensureLocalPostgres(); // installs postgresql when missing and tells us the version
  const version = spawnSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0] ?? '15';
  const name = `forge_chaos_${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  run('pg_createcluster', [version, name, '-p', String(port), '--start']);
  const sql = `CREATE ROLE forge LOGIN SUPERUSER PASSWORD 'forge'`;
  run('su', ['postgres', '-c', `psql -p ${port} -q -v ON_ERROR_STOP=1 -c "${sql}"`]);
  const adminUrl = `postgres://forge:forge@127.0.0.1:${port}/postgres`;
  return {
    name: 'postgres',
    async database(db) {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`create database ${db}`);
      await admin.end();
      return adminUrl.replace(/\/postgres$/, `/${db}`);
    },
    async restart() {
      run('pg_ctlcluster', [version, name, 'restart', '-m', 'immediate']);
      await waitFor('the chaos run’s Postgres cluster', () => portOpen(port), 60_000);
    },
    async stop() {
      run('pg_dropcluster', [version, name, '--stop']);
    },
  };
}

export interface DockerEngine extends Component {
  /** DOCKER_HOST for the workers */
  host: string;
}

/**
 * A dockerd of the chaos run's own: its socket, data root and exec root under dir, a bridge of its
 * own and no iptables rules (the sandbox runs with no network), so restarting it kills no one else's containers.
 * A restart is a SIGTERM (dockerd stops its containers) and a start on the same data root.
 */
export async function startDockerd(dir: string): Promise<DockerEngine> {
  if (process.getuid?.() !== 0) throw new Error('the chaos run starts a dockerd of its own, which needs root');
  const socket = path.join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const docker = dockerClient({ DOCKER_HOST: host });
  const log = path.join(dir, 'dockerd.log');
  // A bridge of its own: with --bridge none, dockerd deletes the host's docker0 at start (the
  // network namespace is shared), and every other container on the machine loses its network.
  const bridge = `fc${randomBytes(4).toString('hex')}`;
  const run = (...a: string[]) => {
    const r = spawnSync('ip', a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr.trim()}`);
  };
  run('link', 'add', 'name', bridge, 'type', 'bridge');
  run('addr', 'add', `10.213.${randomBytes(1)[0]}.1/24`, 'dev', bridge);
  run('link', 'set', bridge, 'up');
  const args = [
    '--data-root',
    path.join(dir, 'docker-data'),
    '--exec-root',
    path.join(dir, 'docker-exec'),
    '--pidfile',
    path.join(dir, 'docker.pid'),
    '-H',
    host,
    '--bridge',
    bridge,
    '--iptables=false',
    '--ip6tables=false',
  ];
  const start = async () => {
    const child = spawnService('dockerd', args, log);
    await waitFor('the chaos run’s dockerd', () => dockerAnswers(docker), 60_000, log);
    return child;
  };
  let child = await start();
  return {
    name: 'docker',
    host,
    async restart() {
      await stopChild(child, 'SIGTERM', 30_000);
      child = await start();
    },
    async stop() {
      await stopChild(child, 'SIGTERM', 30_000);
      // dockerd leaves its overlay mounts behind until they are unmounted; the data root goes with the run's dir.
      await sleep(200);
      spawnSync('sh', ['-c', `grep -o ' ${path.join(dir, 'docker-')}[^ ]*' /proc/mounts | xargs -r -n1 umount -l`]);
      spawnSync('ip', ['link', 'delete', bridge]);
    },
  };
}
