import os from 'node:os';
import path from 'node:path';
import { loadConfig, type ForgeConfig } from '../domain/config.ts';

let cached: ForgeConfig | undefined;

/** The process's configuration, read once from the environment. */
export function config(): ForgeConfig {
  cached ??= loadConfig(process.env, path.join(os.homedir(), '.forge'));
  return cached;
}

export function resetConfigForTests(): void {
  cached = undefined;
}
