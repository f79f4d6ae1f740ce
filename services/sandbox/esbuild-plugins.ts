import path from 'node:path';
import type { Plugin } from 'esbuild';

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
