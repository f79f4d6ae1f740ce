import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ForgeError } from '../../../domain/errors.ts';
import type { ApiSpec } from '../../../domain/tool.ts';
import type { Finding, SourceFile } from '../../../domain/verification.ts';

/**
 * esbuild bundles for the sandbox: tool and tests become one ESM file with zod inlined
 * (the container has no node_modules), `@forge/testkit` → runner/testkit.ts and
 * `@forge/tool` → domain/tool.ts. The tool's files are virtual (never written to disk);
 * bare imports resolve from Forge's own node_modules.
 */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NAMESPACE = 'forge-virtual';

const ALIASES: Record<string, string> = {
  '@forge/testkit': path.join(repoRoot, 'runner', 'testkit.ts'),
  '@forge/tool': path.join(repoRoot, 'domain', 'tool.ts'),
};

/** CommonJS dependencies (undici) call require(); ESM output has none. */
const REQUIRE_BANNER = "import { createRequire as __forgeRequire } from 'node:module'; const require = __forgeRequire(import.meta.url);";

export class BundleError extends ForgeError {
  constructor(what: string, readonly findings: Finding[]) {
    super(
      `could not bundle ${what}: ${findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.message}`).join('; ')}`,
      'BUNDLE_FAILED',
      'fix the import or syntax error named above',
      { what },
    );
  }
}

function virtualFiles(files: Record<string, string>): esbuild.Plugin {
  return {
    name: 'forge-virtual-files',
    setup(build) {
      build.onResolve({ filter: /^@forge\/(testkit|tool)$/ }, (args) => ({ path: ALIASES[args.path]! }));
      build.onResolve({ filter: /^\.\/[^/]+$/ }, (args) => {
        // Only the tool's own files are virtual; relative imports inside Forge's modules are real.
        if (args.namespace !== NAMESPACE && args.kind !== 'entry-point') return undefined;
        const name = args.path.slice(2);
        if (!(name in files)) return { errors: [{ text: `no file ${name} next to the tool (only ${Object.keys(files).join(', ')})` }] };
        return { path: name, namespace: NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: files[args.path],
        loader: args.path.endsWith('.json') ? 'json' : 'ts',
        // Bare imports (zod) resolve from Forge's node_modules.
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

async function build(what: string, entry: string, files: Record<string, string>, banner = false): Promise<string> {
  try {
    const out = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Readable stack traces in failing tests matter more than a few kB.
      minify: false,
      keepNames: true,
      legalComments: 'none',
      logLevel: 'silent',
      plugins: [virtualFiles(files)],
      ...(banner ? { banner: { js: REQUIRE_BANNER } } : {}),
    });
    return out.outputFiles[0]!.text;
  } catch (err) {
    const failure = err as Partial<esbuild.BuildFailure>;
    if (Array.isArray(failure.errors)) throw new BundleError(what, toFindings(failure.errors));
    throw err;
  }
}

/**
 * The test bundle. A setup module runs first (ESM evaluates imports in order): it hands the
 * testkit the API spec and the tool's own permissions, then the tests load.
 */
export function bundleTests(input: { source: string; tests: string; apiSpec?: ApiSpec }): Promise<string> {
  const setup = [
    "import { configureTestkit } from '@forge/testkit';",
    "import { manifest } from './tool.ts';",
    `configureTestkit({ apiSpec: ${JSON.stringify(input.apiSpec ?? null)} ?? undefined, permissions: manifest.permissions });`,
  ].join('\n');
  const entry = "import './__forge_setup.ts';\nimport './tool.test.ts';\n";
  return build('the tool and its tests', './__forge_entry.ts', {
    '__forge_entry.ts': entry,
    '__forge_setup.ts': setup,
    'tool.ts': input.source,
    'tool.test.ts': input.tests,
  });
}

/** The tool alone, as the runner's `call` mode and the live probe load it. */
export function bundleTool(source: string): Promise<string> {
  return build('the tool', './tool.ts', { 'tool.ts': source });
}

/** A Forge-side script that runs in the sandbox image (the egress proxy, the live probe). */
export function bundleRunnerScript(what: string, entrySource: string): Promise<string> {
  return build(what, './__forge_entry.ts', { '__forge_entry.ts': entrySource }, true);
}
