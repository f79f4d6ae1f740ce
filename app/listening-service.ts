import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ForgeConfig } from '../domain/config.ts';
import { ForgeError } from '../domain/errors.ts';
import { alive, forgetPid, logFile, portOpen, recordedPid, startDetached, waitFor } from '../infra/processes.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ListeningService {
  /** the pid file's and the log's name, e.g. mcp */
  name: string;
  /** what a person reads, e.g. "the MCP endpoint" */
  what: string;
  /** bin/forge.mjs's arguments that serve it */
  args: string[];
  port: number;
  /** where to probe the port (loopback for a wildcard bind) */
  probeHost: string;
  /** the configured host, as the error names it */
  host: string;
  portTaken: { code: string; fix: string };
}

/**
 * A Forge HTTP server as a background process with a pid file (forge up's MCP endpoint and
 * dashboard): a pid file naming a dead process is a crashed server, started again at once; a port
 * held by a process Forge did not start is a clear error rather than a second server that cannot bind.
 */
export async function ensureListeningService(cfg: ForgeConfig, s: ListeningService): Promise<{ pid: number; crashedPid?: number }> {
  const recorded = recordedPid(cfg.home, s.name);
  if (recorded?.running && (await portOpen(s.port, s.probeHost))) return { pid: recorded.pid };
  const crashedPid = recorded && !recorded.running ? recorded.pid : undefined;
  if (crashedPid) forgetPid(cfg.home, s.name);
  if (!recorded?.running && (await portOpen(s.port, s.probeHost)))
    throw new ForgeError(
      `port ${s.port} on ${s.host} is taken by a process Forge did not start, so ${s.what} cannot listen there`,
      s.portTaken.code,
      s.portTaken.fix,
    );
  const pid = recorded?.running
    ? recorded.pid
    : startDetached(cfg.home, {
        name: s.name,
        command: process.execPath,
        args: [path.join(root, 'bin', 'forge.mjs'), ...s.args],
        cwd: root,
        env: { ...process.env, FORGE_HOME: cfg.home },
      });
  const log = logFile(cfg.home, s.name);
  await waitFor(
    `Forge's ${s.what.replace(/^the /, '')}`,
    async () => {
      if (!alive(pid)) throw new Error(`${s.what} (pid ${pid}) exited while starting; see ${log}`);
      return portOpen(s.port, s.probeHost);
    },
    60_000,
    log,
  );
  return { pid, ...(crashedPid ? { crashedPid } : {}) };
}
