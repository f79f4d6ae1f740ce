import os from 'node:os';
import path from 'node:path';
import { type ForgeConfig, loadConfig } from '../domain/config.ts';
import { type DeployPolicy, deploymentNameFor, deployPolicySchema } from '../domain/deploy.ts';
import { LOCAL_EMBEDDINGS_MODEL } from '../domain/embedding.ts';

/**
 * The label that ties sandbox containers to one Forge deployment (see forge freeze): its namespace,
 * sandbox queue and home, since two Forge homes on one Docker engine may use the same queue names
 * against Temporal servers of their own, and one's freeze must not kill the other's sandboxes.
 */
export function sandboxDeploymentName(cfg: Pick<ForgeConfig, 'TEMPORAL_NAMESPACE' | 'FORGE_SANDBOX_QUEUE' | 'home'>): string {
  return `${cfg.TEMPORAL_NAMESPACE}/${cfg.FORGE_SANDBOX_QUEUE}@${cfg.home}`;
}

/** The control worker's Temporal worker deployment (issue 12): FORGE_DEPLOYMENT, or one named after the control queue. */
export function controlDeploymentName(cfg: Pick<ForgeConfig, 'FORGE_DEPLOYMENT' | 'FORGE_TASK_QUEUE'>): string {
  return cfg.FORGE_DEPLOYMENT ?? deploymentNameFor(cfg.FORGE_TASK_QUEUE);
}

/** The consent and probe policy, with the environment's overrides (seconds in tests, hours in production). */
export function deployPolicy(
  cfg: Pick<ForgeConfig, 'FORGE_CONSENT_TIMEOUT_S' | 'FORGE_PROBE_WINDOW_S' | 'FORGE_PROBE_INTERVAL_S' | 'FORGE_PROBE_PASSES'>,
): DeployPolicy {
  return deployPolicySchema.parse({
    consentTimeoutSeconds: cfg.FORGE_CONSENT_TIMEOUT_S,
    probeWindowSeconds: cfg.FORGE_PROBE_WINDOW_S,
    probeIntervalSeconds: cfg.FORGE_PROBE_INTERVAL_S,
    passesNeeded: cfg.FORGE_PROBE_PASSES,
  });
}

/** Where registered tools live as files: <FORGE_HOME>/tools/<name>/v<N>/. */
export function toolsDir(cfg: Pick<ForgeConfig, 'home'>): string {
  return path.join(cfg.home, 'tools');
}

/** Where local models are kept: FORGE_MODELS_DIR, else Forge's cache beside its binaries. */
export function modelsDir(cfg: Pick<ForgeConfig, 'FORGE_MODELS_DIR'>): string {
  return cfg.FORGE_MODELS_DIR ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'forge', 'models');
}

/** The local embedding model's folder (FORGE_EMBEDDINGS_URL=local), under the models directory. */
export function localModelDir(cfg: Pick<ForgeConfig, 'FORGE_MODELS_DIR'>): string {
  return path.join(modelsDir(cfg), LOCAL_EMBEDDINGS_MODEL);
}

let cached: ForgeConfig | undefined;

/** The process's configuration, read once from the environment. */
export function config(): ForgeConfig {
  cached ??= loadConfig(process.env, path.join(os.homedir(), '.forge'));
  return cached;
}

export function resetConfigForTests(): void {
  cached = undefined;
}
