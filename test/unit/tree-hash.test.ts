import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { treeHashOf } from '../../services/evolution/workspace.ts';

// The installed tree's hash names the control worker's version and its files go into the worker
// image: in a git checkout that is what git tracks (with local edits), not a scratch script, a log
// or a .env lying beside it (a new-user tester's scratch script made forge up swap in a new version).

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-tree-'));
  dirs.push(dir);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { stdio: 'ignore' });

it('a git checkout is the files git tracks: untracked and ignored ones change nothing, an edit of a tracked one does', async () => {
  const dir = tree({ 'a.ts': 'export const a = 1;\n', 'harness/p.ts': 'export const p = 2;\n', '.gitignore': '*.log\n.env\n' });
  git(dir, 'init', '-q');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'tree');
  const before = await treeHashOf(dir);
  assert.deepEqual(before.files.sort(), ['.gitignore', 'a.ts', 'harness/p.ts']);

  fs.writeFileSync(path.join(dir, 'scratch.mjs'), 'console.log(1);\n');
  fs.writeFileSync(path.join(dir, '.env'), 'SECRET=1\n');
  fs.writeFileSync(path.join(dir, 'worker.log'), 'noise\n');
  assert.equal((await treeHashOf(dir)).hash, before.hash, 'untracked and ignored files are not the tree');

  fs.writeFileSync(path.join(dir, 'a.ts'), 'export const a = 3;\n');
  assert.notEqual((await treeHashOf(dir)).hash, before.hash, "a tracked file's local edit is");
  fs.rmSync(path.join(dir, 'harness/p.ts'));
  assert.deepEqual((await treeHashOf(dir)).files.sort(), ['.gitignore', 'a.ts'], 'a deleted one is gone');
});

it('a tree that is no checkout of its own (a scratch copy) is every file in it', async () => {
  const dir = tree({ 'a.ts': 'export const a = 1;\n', 'test/evolved/new.test.ts': '// added by a patch\n', 'node_modules/x/i.js': '' });
  assert.deepEqual((await treeHashOf(dir)).files.sort(), ['a.ts', 'test/evolved/new.test.ts']);
});
