import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import * as esbuild from 'esbuild';
import { TESTKIT_PATH, ZOD_PATH } from '../../runner/protocol.ts';

/**
 * zod's `z` namespace re-exports every error-message locale (~265 KB of the ~650 KB
 * runner bundle), and esbuild cannot tree-shake a namespace. Inside the sandbox only
 * English messages are used, and parse time is container boot time, so the locale index
 * is replaced by one that exports `en` alone.
 */
export const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * How every sandbox bundle is built (tools, tests, Forge's scripts, the image's zod), so what
 * verification ran is built the way a call runs it. Readable stack traces in failing tests and
 * calls matter more than a few kB, hence unminified with names kept.
 */
export const SANDBOX_BUILD = {
  bundle: true,
  write: false,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: false,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'silent',
} as const satisfies esbuild.BuildOptions;

/** How a bundle names the image's zod: a file URL, which any ESM importer (a job file, `node -e`) resolves alike. */
export const ZOD_URL = pathToFileURL(ZOD_PATH).href;

/**
 * `import … from 'zod'` left as an import of the image's zod (ZOD_PATH) instead of ~0.1 s of esbuild
 * inlining it into every bundle. Only the bare `zod` of an import statement: `require('zod')` and
 * subpaths (zod/mini, which the static stage refuses anyway) are inlined as before, so they still work.
 */
export const zodFromImage: Plugin = {
  name: 'zod-from-image',
  setup(build) {
    build.onResolve({ filter: /^zod$/ }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import' ? { path: ZOD_URL, external: true } : undefined,
    );
  },
};

/** How a test bundle names the image's testkit (TESTKIT_PATH). */
export const TESTKIT_URL = pathToFileURL(TESTKIT_PATH).href;

/**
 * The testkit alone, for TESTKIT_PATH in the image: runner/testkit.ts with zod from the image, built
 * as test bundles built it when they inlined it.
 */
export async function bundleTestkitModule(testkitTs: string): Promise<Buffer> {
  const out = await esbuild.build({ ...SANDBOX_BUILD, entryPoints: [testkitTs], plugins: [zodFromImage, zodEnglishOnly] });
  return Buffer.from(out.outputFiles[0]!.contents);
}

/**
 * zod alone, for ZOD_PATH in the image: built from the host's node_modules (the version the tool's
 * types were checked against), English messages only, built as the tool bundles built it when they
 * inlined it. Its whole export surface: named exports, `z` and the default.
 */
export async function bundleZodModule(resolveDir: string): Promise<Buffer> {
  const out = await esbuild.build({
    ...SANDBOX_BUILD,
    stdin: { contents: "export * from 'zod';\nexport { default } from 'zod';\n", resolveDir, sourcefile: 'zod-entry.js', loader: 'js' },
    plugins: [zodEnglishOnly],
  });
  return Buffer.from(out.outputFiles[0]!.contents);
}
