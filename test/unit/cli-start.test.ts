/**
 * The CLI's start loads only what a command uses (issue 14): `forge --version` loads nothing but
 * Node (not even tsx), `forge help` none of Forge's packages, a command that reads Postgres not the
 * Temporal client, dockerode or TypeScript, and a command that talks to Temporal the client but not
 * dockerode or TypeScript. Checked by the modules each process loads (a load hook ahead of tsx's,
 * writing every URL to a file, and require's cache), never by time: bench/cli.ts measures that.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-cli-start-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

fs.writeFileSync(
  path.join(tmp, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.FORGE_TEST_LOADED, url + '\\n');
  return next(url, context);
}
`,
);
// The bundled CLI (bin/cli-bundle.mjs) requires CommonJS-only packages, which no load hook sees:
// those are read from require's cache as the process exits.
fs.writeFileSync(
  path.join(tmp, 'register.mjs'),
  `import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
register(${JSON.stringify(pathToFileURL(path.join(tmp, 'hooks.mjs')).href)});
const { cache } = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(process.env.FORGE_TEST_LOADED, Object.keys(cache).map((f) => pathToFileURL(f).href + '\\n').join('')));
`,
);

let runs = 0;
/** `forge <args>` with nothing of Forge running; the packages (node_modules) it loaded, by name. */
function forge(...args: string[]): { code: number | null; stdout: string; stderr: string; packages: Set<string> } {
  const loaded = path.join(tmp, `loaded-${++runs}`);
  fs.writeFileSync(loaded, '');
  const closedPort = '1'; // nothing listens on port 1: refused at once
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(tmp, 'register.mjs')).href, 'bin/forge.mjs', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([n]) => !n.startsWith('TEMPORAL_') && !n.startsWith('FORGE_'))),
      FORGE_HOME: path.join(tmp, 'home'),
      DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${closedPort}/postgres`,
      TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}`,
      FORGE_TEST_LOADED: loaded,
    },
  });
  const packages = new Set(
    fs
      .readFileSync(loaded, 'utf8')
      .split('\n')
      // (the CLI's own bundle lives under node_modules/.cache: not a package)
      .map((url) => url.match(/\/node_modules\/(?!\.cache\/)((?:@[^/]+\/)?[^/]+)\//)?.[1])
      .filter((p): p is string => !!p),
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, packages };
}

const HEAVY = ['@temporalio/client', '@temporalio/worker', 'dockerode', 'typescript', '@modelcontextprotocol/sdk', '@anthropic-ai/sdk'];
const present = (packages: Set<string>, names: string[]) => names.filter((n) => packages.has(n));

describe('the CLI loads only what a command uses', () => {
  it('forge --version: Node alone, not even tsx', () => {
    const r = forge('--version');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^forge \d+\.\d+\.\d+\n$/);
    assert.deepEqual([...r.packages], []);
  });

  it('forge help: the command list without any command, use case or package of Forge', () => {
    const r = forge('help', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { commands: string[] };
    assert.ok(out.commands.includes('tools') && out.commands.includes('sandbox'), r.stdout);
    // tsx and the esbuild it transpiles with are how bin/forge.mjs runs TypeScript at all.
    assert.deepEqual(
      [...r.packages].filter((p) => p !== 'tsx' && p !== 'esbuild'),
      [],
    );
  });

  it('forge tools ls (Postgres only, here refused): no Temporal client, dockerode or TypeScript', () => {
    const r = forge('tools', 'ls', '--json');
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /"error":"COMPONENT_DOWN"/);
    assert.ok(r.packages.has('postgres'), 'it did reach for Postgres');
    assert.deepEqual(present(r.packages, HEAVY), []);
  });

  it('forge schedule ls (talks to Temporal, here refused): the Temporal client, but no dockerode or TypeScript', () => {
    const r = forge('schedule', 'ls', '--json');
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /Temporal/);
    assert.deepEqual(present(r.packages, HEAVY), ['@temporalio/client']);
  });
});
