/**
 * The CLI's bundle (bin/cli-bundle.mjs) never runs stale: a run whose sources differ from the ones
 * the bundle was built from — by content, so an edit that keeps the file's size and mtime is seen
 * too — runs the sources through tsx and starts a build in the background, and a later run is from
 * the new bundle; a source that does not compile is reported by tsx and builds nothing; and
 * FORGE_CLI_BUNDLE=0 always runs the sources. Each module keeps its own import.meta.url, and
 * CommonJS-only packages (Temporal's SDK) are required with their named exports intact. Run on a
 * small tree of its own (bin/ copied from this one, node_modules linked: the bundle's folder is per tree).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { until } from '../helpers/wait.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tree = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'forge-cli-bundle-')));
after(() => {
  fs.rmSync(cache, { recursive: true, force: true });
  fs.rmSync(tree, { recursive: true, force: true });
});

fs.mkdirSync(path.join(tree, 'bin'));
fs.mkdirSync(path.join(tree, 'cli'));
for (const f of ['forge.mjs', 'cli-bundle.mjs']) fs.copyFileSync(path.join(root, 'bin', f), path.join(tree, 'bin', f));
fs.copyFileSync(path.join(root, 'tsconfig.json'), path.join(tree, 'tsconfig.json'));
fs.writeFileSync(path.join(tree, 'package.json'), JSON.stringify({ name: 'cli-bundle-test', version: '0.0.1', type: 'module' }));
fs.symlinkSync(path.join(root, 'node_modules'), path.join(tree, 'node_modules'), 'dir');
fs.writeFileSync(
  path.join(tree, 'cli', 'main.ts'),
  `import { ApplicationFailure } from '@temporalio/common';
import { word } from './word.ts';

export async function main(argv: string[]): Promise<number> {
  const where = new Error().stack?.includes('/node_modules/.cache/forge-cli/') ? 'bundle' : 'sources';
  const failure = ApplicationFailure.create({ message: 'm', type: 'T' });
  process.stdout.write(JSON.stringify({ word, argv, where, url: import.meta.url, failure: failure.type }) + '\\n');
  return 0;
}
`,
);
const wordFile = path.join(tree, 'cli', 'word.ts');
fs.writeFileSync(wordFile, "export const word: string = 'one';\n");

const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([n]) => n !== 'FORGE_CLI_BUNDLE'));
interface Out {
  word: string;
  argv: string[];
  where: 'bundle' | 'sources';
  url: string;
  failure: string;
}
function forge(env: Record<string, string> = {}): Out {
  const r = spawnSync(process.execPath, [path.join(tree, 'bin', 'forge.mjs'), 'hello'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...cleanEnv, ...env },
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Out;
}
/** Runs the command until a run is from the bundle (the background build a stale run starts has landed); every run's output. */
async function untilBundled(): Promise<Out[]> {
  const runs: Out[] = [];
  await until('a run from the rebuilt bundle', () => runs.push(forge()) > 0 && runs.at(-1)!.where === 'bundle', 60_000, 200);
  return runs;
}
const cache = path.join(tree, 'node_modules', '.cache', 'forge-cli', createHash('sha256').update(tree).digest('hex').slice(0, 16));
const current = path.join(cache, 'current.json');
const builtHash = () => (JSON.parse(fs.readFileSync(current, 'utf8')) as { hash: string }).hash;

describe("the CLI's bundle", () => {
  it('is built in the background on first use, and then runs the command with each module’s own import.meta.url and required CommonJS packages', async () => {
    const first = forge();
    assert.equal(first.where, 'sources', 'no bundle yet: the sources, through tsx');
    const runs = await untilBundled();
    assert.deepEqual(runs.at(-1), { ...first, where: 'bundle' });
    assert.equal(first.url, pathToFileURL(path.join(tree, 'cli', 'main.ts')).href);
    assert.equal(first.failure, 'T');
    assert.ok(fs.existsSync(path.join(cache, builtHash(), 'main.js')));
  });

  it('is reused while the sources are unchanged', () => {
    const hash = builtHash();
    const before = fs.statSync(current).mtimeMs;
    assert.equal(forge().where, 'bundle');
    assert.equal(builtHash(), hash);
    assert.equal(fs.statSync(current).mtimeMs, before, 'not rebuilt');
  });

  it('never runs a source older than the one on disk, even an edit that keeps its size and mtime', async () => {
    const hash = builtHash();
    const { atime, mtime } = fs.statSync(wordFile);
    fs.writeFileSync(wordFile, "export const word: string = 'two';\n");
    fs.utimesSync(wordFile, atime, mtime);
    const runs = await untilBundled();
    assert.deepEqual(
      runs.map((r) => r.word),
      runs.map(() => 'two'),
    );
    assert.equal(runs[0]!.where, 'sources');
    assert.notEqual(builtHash(), hash);
  });

  it('leaves a source that does not compile to tsx, which reports it, and bundles again once it compiles', async () => {
    const hash = builtHash();
    fs.writeFileSync(wordFile, "export const word: string = 'three'\nexport const = ;\n");
    const r = spawnSync(process.execPath, [path.join(tree, 'bin', 'forge.mjs'), 'hello'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: cleanEnv,
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /word\.ts/, 'tsx reports the error in the source');
    assert.equal(builtHash(), hash, 'nothing was built from it');
    fs.writeFileSync(wordFile, "export const word: string = 'four';\n");
    const runs = await untilBundled();
    assert.ok(
      runs.every((run) => run.word === 'four'),
      JSON.stringify(runs),
    );
  });

  it('is bypassed with FORGE_CLI_BUNDLE=0', () => {
    const out = forge({ FORGE_CLI_BUNDLE: '0' });
    assert.deepEqual([out.word, out.where, out.failure], ['four', 'sources', 'T']);
  });
});
