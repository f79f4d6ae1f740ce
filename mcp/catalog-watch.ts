import { type McpBackend, mcpLog } from '../app/mcp-calls.ts';

export interface CatalogWatch {
  /** called (debounced) after the list of active tools changed; returns the unsubscribe */
  subscribe(listener: () => void): () => void;
  stop(): void;
}

/**
 * The registry's events stay in the process that changed the catalog (a worker, the CLI), and this
 * server is another process: so it polls a fingerprint of the active tools (one cheap query a
 * second) and, when it changed, tells every session — once per burst: a promotion, an archive and
 * a registration within debounceMs of each other make one tools/list_changed.
 */
export function watchCatalog(
  backend: Pick<McpBackend, 'fingerprint'>,
  opts: { intervalMs?: number; debounceMs?: number } = {},
): CatalogWatch {
  const intervalMs = opts.intervalMs ?? 1000;
  const debounceMs = opts.debounceMs ?? 300;
  const listeners = new Set<() => void>();
  let last: string | undefined;
  let failing = false;
  let stopped = false;
  let poll: NodeJS.Timeout | undefined;
  let pending: NodeJS.Timeout | undefined;

  const announce = () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      for (const listener of listeners) listener();
    }, debounceMs);
    pending.unref();
  };

  const tick = async () => {
    try {
      const fp = await backend.fingerprint();
      if (last !== undefined && fp !== last) announce();
      last = fp;
      if (failing) mcpLog.info('catalog readable again');
      failing = false;
    } catch (err) {
      // Forge may be down or coming up: say so once, keep polling.
      if (!failing) mcpLog.warn('cannot read the catalog; retrying every second', { error: (err as Error).message });
      failing = true;
    } finally {
      if (!stopped) {
        poll = setTimeout(tick, intervalMs);
        poll.unref();
      }
    }
  };
  void tick();

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped = true;
      clearTimeout(poll);
      clearTimeout(pending);
      listeners.clear();
    },
  };
}
