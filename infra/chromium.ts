import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ComponentDownError } from '../domain/errors.ts';
import { log } from '../services/log.ts';

/**
 * Headless Chromium for the dashboard's browser tests: Debian's `chromium` package, driven by
 * playwright-core through its executablePath (Playwright never downloads a browser of its own).
 * FORGE_CHROMIUM names another binary.
 */
const NAMES = ['chromium', 'chromium-browser'];

export function findChromium(): string | undefined {
  if (process.env.FORGE_CHROMIUM) return fs.existsSync(process.env.FORGE_CHROMIUM) ? process.env.FORGE_CHROMIUM : undefined;
  for (const dir of (process.env.PATH ?? '/usr/bin').split(path.delimiter)) {
    for (const name of NAMES) {
      const file = path.join(dir, name);
      if (fs.existsSync(file)) return file;
    }
  }
  return undefined;
}

/** The Chromium binary, installed with apt-get on first use (root only); idempotent and quick when present. */
export function ensureChromium(): string {
  const found = findChromium();
  if (found) return found;
  if (process.getuid?.() !== 0 || !fs.existsSync('/usr/bin/apt-get'))
    throw new ComponentDownError(
      'Chromium',
      'no chromium binary on PATH',
      'run as root: apt-get install -y chromium (or set FORGE_CHROMIUM to a Chromium binary)',
    );
  log.info('installing chromium with apt-get (first run only)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const ok = (args: string[]) => spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
  if (!ok(['install', '-y', 'chromium']) && !(ok(['update']) && ok(['install', '-y', 'chromium'])))
    throw new ComponentDownError('Chromium', 'apt-get install chromium failed', 'run: apt-get update && apt-get install -y chromium');
  const installed = findChromium();
  if (!installed) throw new ComponentDownError('Chromium', 'apt-get installed chromium, but no binary is on PATH', 'set FORGE_CHROMIUM');
  return installed;
}
