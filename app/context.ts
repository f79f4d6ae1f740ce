import os from 'node:os';
import type { Client } from '@temporalio/client';
import type { ForgeConfig } from '../domain/config.ts';
import { config } from '../services/config.ts';
import { setLogLevel } from '../services/log.ts';

export type { ForgeConfig };

/** The configuration every surface starts from (environment variables, FORGE_HOME). */
export const loadConfig: () => ForgeConfig = config;

/**
 * A CLI command's output is text for a person; the info-level JSON log lines of the services it runs
 * (a pin audited, a freeze recorded) belong in a server's log, not between its lines. Unless
 * FORGE_LOG_LEVEL asks for them, a command logs only warnings and errors. The servers it starts
 * (forge up's worker, MCP endpoint, dashboard) are processes of their own, at their own level.
 */
export function commandLogLevel(): void {
  if (!process.env.FORGE_LOG_LEVEL) setLogLevel('warn');
}

/** The person at this machine, who decides approvals and requests replays: FORGE_USER, else the OS user. */
export function localUser(): string {
  return process.env.FORGE_USER ?? os.userInfo().username;
}

/**
 * What use cases that talk to Temporal run against: the configuration and one client, connected
 * on first use and closed with the session. Database connections are not held here: each use case
 * opens a short one (app/db.ts), since the embedded PGlite server serves few at once and the
 * workflows a session waits for need it too.
 */
export interface Session {
  readonly cfg: ForgeConfig;
  temporal(): Promise<Client>;
  close(): Promise<void>;
}

export function openSession(cfg: ForgeConfig): Session {
  let client: Promise<Client> | undefined;
  return {
    cfg,
    // The Temporal client package costs most of a second to load: a command that never talks to
    // Temporal (forge tools ls, forge sessions) should not pay for it, so it is imported here.
    temporal: () => (client ??= import('../infra/temporal.ts').then((t) => t.temporalClient(cfg))),
    async close() {
      const connected = await client?.catch(() => undefined);
      await connected?.connection.close();
    },
  };
}

/** One session for the length of `fn` (a CLI command); a server would hold one instead. */
export async function withSession<T>(cfg: ForgeConfig, fn: (session: Session) => Promise<T>): Promise<T> {
  const session = openSession(cfg);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}
