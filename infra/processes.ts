import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ForgeError } from '../domain/errors.ts';

/**
 * Background services Forge starts itself (Temporal dev server, embedded Postgres, worker,
 * scripted model). Each gets a pid file and a log file under <home>/run and <home>/logs so
 * `forge down` and `forge doctor` can find them from any later shell.
 */
export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function runDir(home: string): string {
  return path.join(home, 'run');
}
export function logFile(home: string, name: string): string {
  return path.join(home, 'logs', `${name}.log`);
}
function pidFile(home: string, name: string): string {
  return path.join(runDir(home), `${name}.pid`);
}

export function startDetached(home: string, spec: ServiceSpec): number {
  fs.mkdirSync(runDir(home), { recursive: true });
  fs.mkdirSync(path.join(home, 'logs'), { recursive: true });
  const out = fs.openSync(logFile(home, spec.name), 'a');
  const child = spawn(spec.command, spec.args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: spec.env ?? process.env,
    cwd: spec.cwd,
  });
  child.unref();
  fs.closeSync(out);
  if (!child.pid) throw new Error(`could not start ${spec.name} (${spec.command})`);
  fs.writeFileSync(pidFile(home, spec.name), String(child.pid));
  return child.pid;
}

/**
 * What a second Forge home on one machine needs of its own: every port a home serves on by default,
 * and the control worker's deployment, whose containers are named after it.
 */
export const SECOND_HOME_SETTINGS =
  'free ports for FORGE_PGLITE_PORT, TEMPORAL_PORT, TEMPORAL_UI_PORT, FORGE_SCRIPTED_MODEL_PORT, FORGE_MCP_PORT and FORGE_DASHBOARD_PORT';

/** A port Forge would serve one of this home's services on, held by a process this home did not start. */
export class PortTakenError extends ForgeError {
  constructor(port: number, what: string, home: string, fix: string) {
    super(
      `port ${port} is taken by a process this Forge home (${home}) did not start, so it cannot be this home's ${what}: it is another Forge home's, or a server of your own`,
      'PORT_TAKEN',
      fix,
      { port, home },
    );
  }
}

/**
 * Whether this home's service already listens on its port: false when nothing does; a port held
 * by a process this home did not start (another Forge home on default ports) is refused, since
 * using it would put this home's workflows or data in the other's.
 */
export async function ownServiceListening(home: string, s: { name: string; port: number; what: string; fix: string }): Promise<boolean> {
  if (!(await portOpen(s.port))) return false;
  if (runningPid(home, s.name) === null) throw new PortTakenError(s.port, s.what, home, s.fix);
  return true;
}

export function runningPid(home: string, name: string): number | null {
  const recorded = recordedPid(home, name);
  return recorded?.running ? recorded.pid : null;
}

/**
 * The process a service's pid file names and whether it still runs; null when there is no pid
 * file. A pid file naming a dead process means the service Forge started has crashed or was killed.
 */
export function recordedPid(home: string, name: string): { pid: number; running: boolean } | null {
  let text: string;
  try {
    text = fs.readFileSync(pidFile(home, name), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, running: alive(pid) };
}

/** Forgets a service's pid file (after its process was found dead). */
export function forgetPid(home: string, name: string): void {
  fs.rmSync(pidFile(home, name), { force: true });
}

/** Stops a service by its pid file: SIGTERM, then SIGKILL after graceMs. */
export async function stopService(home: string, name: string, graceMs = 5000): Promise<boolean> {
  const pid = runningPid(home, name);
  fs.rmSync(pidFile(home, name), { force: true });
  if (!pid) return false;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  return true;
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // detached ⇒ own process group: reach its children too
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Whether pid names a live process. A killed detached service whose parent never reaps it (Forge's
 * own parent is gone, and PID 1 in a container often reaps nothing) stays a zombie that
 * signal 0 still reaches: on Linux its state in /proc says it is dead.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state !== 'Z' && state !== 'X';
  } catch {
    // Gone since the signal, or no /proc at all (macOS), where signal 0 is all there is.
    return !fs.existsSync('/proc/self/stat');
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logPath?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  const tail = logPath && fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8').slice(-1500) : '';
  throw new Error(`${what} did not become ready within ${timeoutMs} ms${tail ? `; last log lines:\n${tail}` : ''}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
