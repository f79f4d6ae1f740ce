import { readFileSync } from 'node:fs';

/**
 * The container's own cgroup counters, read from inside. The runner survives when a
 * process it started is OOM-killed or a spawn fails on the pid limit; these counters say
 * which limit was hit, while the container (and so its cgroup) still exists. Both cgroup
 * v1 and v2 layouts; absent files just mean "unknown".
 */
function counter(files: string[], key: string): number | undefined {
  for (const file of files) {
    try {
      const line = readFileSync(file, 'utf8')
        .split('\n')
        .find((l) => l.startsWith(key + ' '));
      if (line) return Number(line.slice(key.length + 1));
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

export interface ResourceCounters {
  oomKills?: number;
  pidsLimitHits?: number;
}

export function readResourceCounters(): ResourceCounters {
  const oomKills = counter(['/sys/fs/cgroup/memory/memory.oom_control', '/sys/fs/cgroup/memory.events'], 'oom_kill');
  const pidsLimitHits = counter(['/sys/fs/cgroup/pids/pids.events', '/sys/fs/cgroup/pids.events'], 'max');
  return { ...(oomKills !== undefined ? { oomKills } : {}), ...(pidsLimitHits !== undefined ? { pidsLimitHits } : {}) };
}
