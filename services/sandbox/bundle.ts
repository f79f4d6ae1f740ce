import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ForgeError } from '../../domain/errors.ts';
import { zodEnglishOnly } from './esbuild-plugins.ts';

/**
 * Bundles a tool (or its test file) into one ESM module the runner loads inside the
 * sandbox: zod inlined, `@forge/tool` (types only) erased, `@forge/testkit` resolved to
 * the runner's kit. The container has no node_modules, so everything must be inside.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export class ToolBundleError extends ForgeError {
  constructor(file: string, messages: string[]) {
    super(`could not bundle ${file}: ${messages.join('; ')}`, 'TOOL_BUNDLE_FAILED',
      'fix the import or syntax error named above; tools may import only zod, node built-ins, @forge/tool (types) and @forge/testkit (tests)',
      { file, messages });
  }
}

const forgeModules: esbuild.Plugin = {
  name: 'forge-modules',
  setup(build) {
    // Type-only: a value import from it has nothing to bind to, and esbuild says so.
    build.onResolve({ filter: /^@forge\/tool$/ }, () => ({ path: '@forge/tool', namespace: 'forge-empty' }));
    build.onLoad({ filter: /.*/, namespace: 'forge-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
    build.onResolve({ filter: /^@forge\/testkit$/ }, () => ({ path: path.join(repoRoot, 'runner', 'testkit.ts') }));
  },
};

const formatMessage = (m: esbuild.Message) =>
  m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text;

export async function bundleToolModule(file: string): Promise<string> {
  try {
    const out = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Tools live anywhere on disk; zod comes from Forge's own node_modules.
      nodePaths: [path.join(repoRoot, 'node_modules')],
      plugins: [forgeModules, zodEnglishOnly],
      logLevel: 'silent',
      legalComments: 'none',
    });
    return out.outputFiles[0]!.text;
  } catch (err) {
    const failure = err as Partial<esbuild.BuildFailure>;
    throw new ToolBundleError(file, failure.errors?.map(formatMessage) ?? [String(err)]);
  }
}
