import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { log as rootLog } from '../services/log.ts';

/**
 * The Temporal SDK's own logs as Forge's JSON lines. Left to themselves, the SDK prints its lines
 * (a worker's state) over several lines, and its Rust core writes its own (a poll retried while
 * Temporal is down) with ANSI colours whatever the output is, which end up as escape codes in
 * worker.log. Forwarded here, both read like every other line of that log: one JSON object each,
 * at FORGE_LOG_LEVEL (the core sends warnings and errors, as by default).
 */
const sdkLog = rootLog.child({ component: 'temporal' });

const levels: Record<LogLevel, 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'debug',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Fields JSON can carry: the core's timestamps are bigints, an SDK error an Error. */
function plain(meta: LogMetadata | undefined): Record<string, unknown> | undefined {
  if (!meta) return undefined;
  const text = JSON.stringify(meta, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value instanceof Error ? value.message : value,
  );
  return text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
}

const forgeLogger: TemporalLogger = {
  log: (level, message, meta) => sdkLog[levels[level]](message, plain(meta)),
  trace: (message, meta) => sdkLog.debug(message, plain(meta)),
  debug: (message, meta) => sdkLog.debug(message, plain(meta)),
  info: (message, meta) => sdkLog.info(message, plain(meta)),
  warn: (message, meta) => sdkLog.warn(message, plain(meta)),
  error: (message, meta) => sdkLog.error(message, plain(meta)),
};

/** Installs the SDK runtime with Forge's logger; before the first connection of the process, once. */
export function installTemporalLogging(): void {
  Runtime.install({ logger: forgeLogger, telemetryOptions: { logging: { forward: {} } } });
}
