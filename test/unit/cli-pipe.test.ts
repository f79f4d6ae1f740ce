/**
 * A reader that stops early (`forge help | head -1`) closes the pipe while the CLI still prints:
 * the CLI stops quietly, as Unix tools do, with no unhandled EPIPE and no stack trace.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

it('a closed stdout pipe ends the command quietly (exit 0, nothing on stderr)', async () => {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'forge.mjs'), 'help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // the reader is gone before the CLI writes a line
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  assert.equal(code, 0);
});
