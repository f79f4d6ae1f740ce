/**
 * The sandbox: a hardened Docker backend (docker.ts, container.ts), a single-use warm
 * pool in front of it (pool.ts); the activities over it live in activities/sandbox.ts.
 */

export { createDockerBackend, type DockerBackend, reapOrphans } from './docker.ts';
export { type CreateSandboxOptions, createSandbox, type PoolStats, type Sandbox } from './pool.ts';
export {
  DEFAULT_LIMITS,
  type KilledBy,
  type RunOptions,
  type SandboxBackend,
  SandboxCancelledError,
  SandboxClosedError,
  type SandboxJob,
  type SandboxLimits,
  type SandboxResult,
  SandboxStartError,
} from './types.ts';
