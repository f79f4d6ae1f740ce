import os from 'node:os';
import path from 'node:path';
import { type ForgeConfig, loadConfig } from '../domain/config.ts';

/** The label that ties sandbox containers to one Forge deployment (see forge freeze). */
export function sandboxDeploymentName(cfg: Pick<ForgeConfig, 'TEMPORAL_NAMESPACE' | 'FORGE_SANDBOX_QUEUE'>): string {
  return `${cfg.TEMPORAL_NAMESPACE}/${cfg.FORGE_SANDBOX_QUEUE}`;
}

/** Where registered tools live as files: <FORGE_HOME>/tools/<name>/v<N>/. */
export function toolsDir(cfg: Pick<ForgeConfig, 'home'>): string {
  return path.join(cfg.home, 'tools');
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
