import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import Docker from 'dockerode';
import type { ForgeConfig } from '../domain/config.ts';
import { ComponentDownError } from '../domain/errors.ts';
import { log } from '../services/log.ts';
import { sleep } from './processes.ts';

/** DOCKER_HOST (tcp://host:port or unix:///path), or the default socket. */
export function dockerClient(cfg: Pick<ForgeConfig, 'DOCKER_HOST'>): Docker {
  const host = cfg.DOCKER_HOST;
  if (!host) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) });
}

export async function dockerAnswers(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

const isRoot = () => process.getuid?.() === 0;
const hasBinary = (p: string) => fs.existsSync(p);

/**
 * Makes sure a Docker engine answers. On Debian as root with no remote DOCKER_HOST, installs
 * docker.io when dockerd is missing and starts dockerd in the background; otherwise says exactly
 * what the person must do.
 */
export async function ensureDockerEngine(cfg: ForgeConfig): Promise<{ started: boolean }> {
  const docker = dockerClient(cfg);
  if (await dockerAnswers(docker)) return { started: false };
  if (cfg.DOCKER_HOST && !cfg.DOCKER_HOST.startsWith('unix:///var/run/docker.sock')) {
    throw new ComponentDownError(
      'Docker',
      `no engine answers at DOCKER_HOST=${cfg.DOCKER_HOST}`,
      'start that engine, or unset DOCKER_HOST to use the local one',
    );
  }
  if (!isRoot()) {
    throw new ComponentDownError(
      'Docker',
      'no engine answers on /var/run/docker.sock',
      'start Docker (e.g. sudo systemctl start docker, or sudo dockerd &) and make sure your user may use the socket',
    );
  }
  if (!hasBinary('/usr/sbin/dockerd') && !hasBinary('/usr/bin/dockerd')) installDockerIo();
  log.info('starting dockerd in the background');
  fs.mkdirSync('/var/log/forge', { recursive: true });
  const out = fs.openSync('/var/log/forge/dockerd.log', 'a');
  const { spawn } = await import('node:child_process');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await dockerAnswers(docker)) return { started: true };
    await sleep(300);
  }
  throw new ComponentDownError('Docker', 'dockerd was started but did not answer within 60 s', 'see /var/log/forge/dockerd.log');
}

function installDockerIo(): void {
  if (!hasBinary('/usr/bin/apt-get')) {
    throw new ComponentDownError(
      'Docker',
      'dockerd is not installed and this is not a Debian-like system',
      'install Docker Engine for your OS and start it',
    );
  }
  log.info('installing docker.io with apt-get (first run only)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
  if (!run(['install', '-y', 'docker.io']) && !(run(['update']) && run(['install', '-y', 'docker.io']))) {
    throw new ComponentDownError('Docker', 'apt-get install docker.io failed', 'run: apt-get update && apt-get install -y docker.io');
  }
}
