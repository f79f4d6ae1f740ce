import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ForgeError } from '../../domain/errors.ts';
import type { ApiSpec } from '../../domain/tool.ts';
import type { Finding, SourceFile } from '../../domain/verification.ts';
import { SANDBOX_BUILD, TESTKIT_URL, zodEnglishOnly, zodFromImage } from './esbuild-plugins.ts';

/**
 * The one bundler for code that runs in the sandbox: a registered tool's call, the mock
 * stage's tool + tests, the live probe's tool and Forge's own scripts (egress proxy, live
 * probe). One esbuild configuration builds them all, so what verification ran is built the
 * way production runs it: one ESM file importing zod from the sandbox image (runner/protocol.ts
 * ZOD_PATH: inlining it was ~0.1 s of esbuild per bundle; the container has no node_modules),
 * `@forge/tool` erased (it is types only) and `@forge/testkit` left as an import of the image's
 * (runner/protocol.ts TESTKIT_PATH, runner/testkit.ts built alone). Forge's own
 * scripts (bundleRunnerScript, built once per process) still inline what they use.
 * A tool's own files come from memory (verification) or from its folder on disk (a
 * registered version, `forge sandbox exec`); bare imports resolve from Forge's node_modules.
 */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAMESPACE = 'forge-tool-files';

/** CommonJS dependencies (undici) call require(); ESM output has none. */
const REQUIRE_BANNER = "import { createRequire as __forgeRequire } from 'node:module'; const require = __forgeRequire(import.meta.url);";

export class ToolBundleError extends ForgeError {
  constructor(
    what: string,
    readonly findings: Finding[],
  ) {
    super(
      `could not bundle ${what}: ${findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.message}`).join('; ')}`,
      'TOOL_BUNDLE_FAILED',
      'fix the import or syntax error named above; tools may import only zod, node built-ins, @forge/tool (types) and @forge/testkit (tests)',
      { what, findings },
    );
  }
}

/** The tool's own files: only these are resolved for `./name` imports. */
interface ToolFiles {
  has(name: string): boolean;
  read(name: string): Promise<string>;
  /** why `name` is not among them, for the error */
  missing(name: string): string;
}

function inMemory(files: Record<string, string>): ToolFiles {
  return {
    has: (name) => Object.hasOwn(files, name),
    read: async (name) => files[name]!,
    missing: (name) => `no file ${name} next to the tool (only ${Object.keys(files).join(', ')})`,
  };
}

const forgeModules: esbuild.Plugin = {
  name: 'forge-modules',
  setup(build) {
    // Types only: a value import from it has nothing to bind to, and esbuild says so.
    build.onResolve({ filter: /^@forge\/tool$/ }, () => ({ path: '@forge/tool', namespace: 'forge-empty' }));
    build.onLoad({ filter: /.*/, namespace: 'forge-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
    build.onResolve({ filter: /^@forge\/testkit$/ }, () => ({ path: TESTKIT_URL, external: true }));
  },
};

function toolFiles(files: ToolFiles): esbuild.Plugin {
  return {
    name: 'forge-tool-files',
    setup(build) {
      build.onResolve({ filter: /^\.\/[^/]+$/ }, (args) => {
        // Only the tool's own files are virtual; relative imports inside Forge's modules are real.
        if (args.namespace !== NAMESPACE && args.kind !== 'entry-point') return undefined;
        const name = args.path.slice(2);
        if (!files.has(name)) return { errors: [{ text: files.missing(name) }] };
        return { path: name, namespace: NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, async (args) => ({
        contents: await files.read(args.path),
        loader: args.path.endsWith('.json') ? 'json' : 'ts',
        // Bare imports resolve from Forge's node_modules (zod's is left to the image's copy, zodFromImage).
        resolveDir: repoRoot,
      }));
    },
  };
}

function toFindings(messages: esbuild.Message[]): Finding[] {
  return messages.map((m) => {
    const file = (m.location?.file.replace(`${NAMESPACE}:`, '') ?? 'tool.ts') as SourceFile;
    return {
      rule: 'bundle',
      message: m.text,
      file: file === 'tool.test.ts' ? 'tool.test.ts' : 'tool.ts',
      line: m.location?.line ?? 0,
      column: m.location ? m.location.column + 1 : 0,
      snippet: m.location?.lineText.trim() ?? '',
    };
  });
}

interface Built {
  text: string;
  /** Forge's own files it was built from (testkit, runner), with their mtimes: an edit invalidates it */
  stamps: Array<[file: string, mtimeMs: number]>;
}

/** `banner`: a Forge script (bundleRunnerScript), which inlines zod; tools and tests import the image's. */
async function build(what: string, entry: string, files: ToolFiles, banner = false): Promise<Built> {
  try {
    const out = await esbuild.build({
      ...SANDBOX_BUILD,
      entryPoints: [entry],
      metafile: true,
      plugins: [...(banner ? [] : [zodFromImage]), forgeModules, toolFiles(files), zodEnglishOnly],
      ...(banner ? { banner: { js: REQUIRE_BANNER } } : {}),
    });
    // Inputs named `namespace:path` are the tool's own (in the key already); node_modules never
    // change while we run (static.ts makes the same bet).
    const own = Object.keys(out.metafile.inputs)
      .filter((f) => !f.includes(':') && !f.split(/[\\/]/).includes('node_modules'))
      .map((f) => path.resolve(f));
    const stamps = await Promise.all(own.map(async (f): Promise<[string, number]> => [f, (await stat(f)).mtimeMs]));
    return { text: out.outputFiles[0]!.text, stamps };
  } catch (err) {
    const failure = err as Partial<esbuild.BuildFailure>;
    if (Array.isArray(failure.errors)) throw new ToolBundleError(what, toFindings(failure.errors));
    throw err;
  }
}

/**
 * Bundles of in-memory files, by a hash of those files: verifying the same tool again (an activity's
 * retry, the folder watcher, the live stage after forge-checks bundled the same tool, the egress
 * proxy's fixed script) costs a few stats instead of an esbuild run (~4 ms for a tool, ~10 ms with its
 * tests, ~0.1 s for a script that inlines zod). Failures are not kept.
 */
const BUNDLES_KEPT = 32;
const bundles = new Map<string, Promise<Built>>();

async function fresh(built: Built): Promise<boolean> {
  try {
    const now = await Promise.all(built.stamps.map(([f]) => stat(f)));
    return now.every((s, i) => s.mtimeMs === built.stamps[i]![1]);
  } catch {
    return false;
  }
}

async function buildInMemory(what: string, entry: string, files: Record<string, string>, banner = false): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify([entry, banner, Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]))
    .digest('hex');
  const cached = bundles.get(key);
  if (cached) {
    const built = await cached.catch(() => undefined);
    if (built && (await fresh(built))) {
      // Most recently used last: the oldest entry is the first one evicted.
      bundles.delete(key);
      bundles.set(key, cached);
      return built.text;
    }
    if (bundles.get(key) === cached) bundles.delete(key);
  }
  const building = build(what, entry, inMemory(files), banner);
  bundles.set(key, building);
  building.catch(() => {
    if (bundles.get(key) === building) bundles.delete(key);
  });
  while (bundles.size > BUNDLES_KEPT) bundles.delete(bundles.keys().next().value!);
  return (await building).text;
}

/** The tool alone, as the runner's `call` mode and the live probe load it. */
export function bundleTool(source: string): Promise<string> {
  return buildInMemory('the tool', './tool.ts', { 'tool.ts': source });
}

/**
 * A tool module on disk (a registered version's tool.ts, `forge sandbox exec <file>`); its own
 * imports come from its folder. The folder's files are read (a few small files) and the bundle is
 * kept by their content like the others: every call of a registered version would otherwise pay
 * an esbuild run, and an edited file is a different key.
 */
export async function bundleToolModule(file: string): Promise<string> {
  const dir = path.dirname(file);
  const entries = await readdir(dir, { withFileTypes: true });
  const files = Object.fromEntries(
    await Promise.all(
      entries.filter((e) => e.isFile()).map(async (e) => [e.name, await readFile(path.join(dir, e.name), 'utf8')] as const),
    ),
  );
  return buildInMemory(file, `./${path.basename(file)}`, files);
}

/**
 * The test bundle. A setup module runs first (ESM evaluates imports in order): it hands the
 * testkit the API spec and the tool's own permissions and side effect, then the tests load.
 */
export function bundleTests(input: { source: string; tests: string; apiSpec?: ApiSpec }): Promise<string> {
  const setup = [
    "import { configureTestkit } from '@forge/testkit';",
    "import { manifest } from './tool.ts';",
    `configureTestkit({ apiSpec: ${JSON.stringify(input.apiSpec ?? null)} ?? undefined, permissions: manifest.permissions, sideEffect: manifest.sideEffect });`,
  ].join('\n');
  const entry = "import './__forge_setup.ts';\nimport './tool.test.ts';\n";
  return buildInMemory('the tool and its tests', './__forge_entry.ts', {
    '__forge_entry.ts': entry,
    '__forge_setup.ts': setup,
    'tool.ts': input.source,
    'tool.test.ts': input.tests,
  });
}

/** A Forge-side script that runs in the sandbox image (the egress proxy, the live probe). */
export function bundleRunnerScript(what: string, entrySource: string): Promise<string> {
  return buildInMemory(what, './__forge_entry.ts', { '__forge_entry.ts': entrySource }, true);
}
