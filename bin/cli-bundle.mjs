// The CLI as a prebuilt bundle, so a command runs on plain Node instead of through tsx (issue 14).
// tsx costs about 0.3 CPU-s to start and its module hooks run on a thread of their own that every
// module load crosses, node_modules included: `forge sandbox verify` spent more CPU getting there
// than in its work. The bundle is built by esbuild (already what tsx transpiles with) from
// cli/main.ts and everything of Forge's it imports, packages left external, split into chunks so
// each command still loads only its own modules.
//
// It never runs stale: before every run the files it was built from are read again and hashed
// (about 180 files, 1 MB: a few ms). When one differs — an edit, a deleted file, tsconfig.json,
// package.json, esbuild's version, this file — or there is no bundle yet, this run goes through tsx
// as before and a build starts in the background (one at a time, a lock file), for the next run: a
// build takes 0.3–0.8 CPU-s, more than tsx costs a small command, and in a tree being edited most
// runs would pay for one. The hash is of the bytes esbuild compiled (read by the plugin below), so a
// file edited during a build is seen as changed on the next run. A build that fails (a syntax error
// mid-edit, no write access) leaves the sources to tsx, which reports errors the usual way.
// FORGE_CLI_BUNDLE=0 always takes the tsx path.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Under this tree's node_modules, so the bundle's package imports resolve to it, and out of what git,
 * Biome and the worker image's tree hash see; one folder per tree, since trees may share node_modules
 * (the evolve cycle's scratch trees link this one's).
 */
const cacheDir = path.join(root, 'node_modules', '.cache', 'forge-cli', createHash('sha256').update(root).digest('hex').slice(0, 16));
const currentFile = path.join(cacheDir, 'current.json');
/** Besides the sources: what else decides the output. */
const EXTRA_INPUTS = ['tsconfig.json', 'package.json', 'node_modules/esbuild/package.json', 'bin/cli-bundle.mjs'];
const lockFile = path.join(cacheDir, 'build.lock');
/** A lock older than this is a build that died: the next stale run starts another. */
const LOCK_STALE_MS = 60_000;
/** A build no run has started from for this long is removed (a running command may still load chunks from its own). */
const KEEP_OLD_MS = 6 * 60 * 60 * 1000;

const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' };

/** The hash of the inputs' contents, with their relative paths. */
function digest(inputs) {
  const hash = createHash('sha256');
  for (const [rel, content] of inputs) hash.update(`${rel}\0`).update(content).update('\0');
  return hash.digest('hex');
}

const onDisk = (rels) => rels.map((rel) => [rel, fs.readFileSync(path.join(root, rel))]);

/** The current build's entry when it was built from exactly the files on disk now, else null. */
function upToDate() {
  try {
    const current = JSON.parse(fs.readFileSync(currentFile, 'utf8'));
    const entry = path.join(cacheDir, current.hash, 'main.js');
    if (digest(onDisk(current.inputs)) !== current.hash) return null;
    try {
      fs.utimesSync(path.dirname(entry), new Date(), new Date()); // in use: not pruned
    } catch {}
    return fs.existsSync(entry) ? entry : null;
  } catch {
    return null;
  }
}

async function build() {
  const esbuild = await import('esbuild');
  const extra = onDisk(EXTRA_INPUTS);
  /** every file of Forge's the bundle is made of, as esbuild compiled it */
  const sources = new Map();
  const tmp = path.join(cacheDir, `tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const { outputFiles } = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { main: path.join(root, 'cli', 'main.ts') },
      outdir: tmp,
      write: false,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      // as tsx transpiles: functions and classes keep their names (error names, logs)
      keepNames: true,
      logLevel: 'silent',
      // Each module's import.meta.url stays its source file's, so files found next to the source
      // (package.json, migrations, the worker's entry, the static checker's thread) are found as under tsx.
      define: { 'import.meta.url': '__forgeModuleUrl' },
      // Packages that are CommonJS only (Temporal's SDK) are loaded with require: importing CommonJS
      // makes Node scan the module, and every module it re-exports, for its export names — about
      // 50 ms of the Temporal client's load here. Same module instances as any other require of them.
      banner: {
        js: "import { createRequire as __forgeCreateRequire } from 'node:module'; const require = __forgeCreateRequire(import.meta.url);",
      },
      plugins: [
        {
          name: 'commonjs-packages',
          setup(b) {
            b.onResolve({ filter: /^@temporalio\// }, (args) =>
              args.namespace === 'commonjs-package'
                ? { path: args.path, external: true }
                : { path: args.path, namespace: 'commonjs-package' },
            );
            b.onLoad({ filter: /.*/, namespace: 'commonjs-package' }, (args) => ({
              contents: `module.exports = require(${JSON.stringify(args.path)});`,
              loader: 'js',
            }));
          },
        },
        {
          name: 'forge-sources',
          setup(b) {
            b.onLoad({ filter: /\.[cm]?[jt]s$|\.json$/ }, async (args) => {
              const content = await fs.promises.readFile(args.path);
              sources.set(path.relative(root, args.path).split(path.sep).join('/'), content);
              const loader = LOADERS[path.extname(args.path)];
              if (loader === 'json') return { contents: content, loader };
              const text = content.toString('utf8');
              const at = text.startsWith('#!') ? text.indexOf('\n') + 1 : 0;
              const url = `const __forgeModuleUrl = ${JSON.stringify(pathToFileURL(args.path).href)};\n`;
              return { contents: text.slice(0, at) + url + text.slice(at), loader };
            });
          },
        },
      ],
    });
    // Each chunk parsed again before any run loads it: a module of Forge's declaring its own
    // top-level `require` would clash with the banner's, and that must fail here, not in a command.
    for (const out of outputFiles) {
      await esbuild.transform(out.text, { loader: 'js', format: 'esm', logLevel: 'silent' });
      fs.mkdirSync(path.dirname(out.path), { recursive: true });
      fs.writeFileSync(out.path, out.contents);
    }
    const inputs = [...extra, ...[...sources].sort(([a], [b]) => a.localeCompare(b))];
    const hash = digest(inputs);
    const dir = path.join(cacheDir, hash);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // another run built the same files at the same time: keep its build
      if (!fs.existsSync(path.join(dir, 'main.js'))) throw err;
    }
    const next = `${currentFile}.${process.pid}`;
    fs.writeFileSync(next, JSON.stringify({ hash, inputs: inputs.map(([rel]) => rel) }));
    fs.renameSync(next, currentFile);
    prune(hash);
    return path.join(dir, 'main.js');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function prune(keep) {
  for (const name of fs.readdirSync(cacheDir)) {
    const p = path.join(cacheDir, name);
    if (name === keep || name.startsWith('current.json')) continue;
    try {
      if (Date.now() - fs.statSync(p).mtimeMs > KEEP_OLD_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {}
  }
}

/** Builds the bundle unless another build holds the lock. */
async function buildOnce() {
  fs.mkdirSync(cacheDir, { recursive: true });
  try {
    if (Date.now() - fs.statSync(lockFile).mtimeMs > LOCK_STALE_MS) fs.rmSync(lockFile, { force: true });
  } catch {}
  let lock;
  try {
    lock = fs.openSync(lockFile, 'wx');
  } catch {
    return; // another run is building it
  }
  try {
    if (!upToDate()) await build(); // not again when a build that held the lock just made it current
  } finally {
    fs.closeSync(lock);
    fs.rmSync(lockFile, { force: true });
  }
}

/** The URL of the bundled CLI's entry (exports cli/main.ts's), or null: run through tsx, the bundle being rebuilt meanwhile. */
export function bundledCli() {
  if (process.env.FORGE_CLI_BUNDLE === '0') return null;
  const entry = upToDate();
  if (entry) return pathToFileURL(entry).href;
  try {
    // Not when a build is under way, nor in a tree this user cannot write to (an install owned by another user).
    if (Date.now() - fs.statSync(lockFile).mtimeMs < LOCK_STALE_MS) return null;
  } catch {}
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.accessSync(cacheDir, fs.constants.W_OK);
    spawn(process.execPath, [fileURLToPath(import.meta.url), '--build'], { detached: true, stdio: 'ignore' }).unref();
  } catch {}
  return null;
}

// `node bin/cli-bundle.mjs --build`: the background build a stale run starts.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--build') {
  await buildOnce().catch(() => {});
}
