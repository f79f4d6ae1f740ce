#!/usr/bin/env node
// The `forge` command. Forge runs its TypeScript directly through tsx: no build step to forget.
// Start-up cost (issue 14): `forge --version` is answered before tsx loads; past that, each
// command imports only what it uses (cli/main.ts), and tsx keeps what it transpiled in its cache
// (os.tmpdir()/tsx-<uid>), so only a source file's first run after a change pays for its transform.
import { readFileSync } from 'node:fs';

const [command, ...rest] = process.argv.slice(2);
if (command === '--version' && rest.length === 0) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`forge ${version}\n`);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  if (command === 'mcp') {
    // A surface of its own (mcp/): the MCP server on stdio, or its HTTP endpoint. It exits when its
    // client goes (stdin closed) or on a signal, whatever handles a library may still hold.
    const { main } = await import('../mcp/main.ts');
    process.exit(await main(rest));
  } else if (command === 'dashboard') {
    // The web dashboard (web/), a surface of its own like mcp/: it serves until a signal.
    const { main } = await import('../web/main.ts');
    process.exit(await main(rest));
  } else {
    const { main } = await import('../cli/main.ts');
    process.exitCode = await main(process.argv.slice(2));
  }
}
