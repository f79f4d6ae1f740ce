import os from 'node:os';
import path from 'node:path';
import { loadConfig, type ForgeConfig } from '../domain/config.ts';

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
