/**
 * The sandbox: a hardened Docker backend (docker.ts, container.ts), a single-use warm
 * pool in front of it (pool.ts); the activities over it live in activities/sandbox.ts.
 */
export { createSandbox, type Sandbox, type CreateSandboxOptions, type PoolStats } from './pool.ts';
export { createDockerBackend, reapOrphans, type DockerBackend } from './docker.ts';
export {
  DEFAULT_LIMITS, SandboxCancelledError, SandboxClosedError, SandboxStartError,
  type KilledBy, type RunOptions, type SandboxBackend, type SandboxJob, type SandboxLimits, type SandboxResult,
} from './types.ts';
