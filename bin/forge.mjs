#!/usr/bin/env node
// The `forge` command. Forge runs its TypeScript without a build step to forget. Start-up cost
// (issue 14): `forge --version` is answered before anything loads; the CLI's commands run from a
// bundle of its sources on plain Node, used only while it matches every source it was built from
// (bin/cli-bundle.mjs); each command imports only what it uses (cli/main.ts). The MCP server, the
// dashboard, and the CLI while its bundle is stale or missing run through tsx, which keeps what it
// transpiled in its cache (os.tmpdir()/tsx-<uid>): a source file's first run after a change pays for
// its transform.
import { readFileSync } from 'node:fs';

const [command, ...rest] = process.argv.slice(2);
if (command === '--version' && rest.length === 0) {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`forge ${version}\n`);
} else {
  // The CLI's commands run from a prebuilt bundle on plain Node when it is up to date with the
  // sources, else through tsx while the bundle is rebuilt in the background (bin/cli-bundle.mjs).
  const bundle = command === 'mcp' || command === 'dashboard' ? null : (await import('./cli-bundle.mjs')).bundledCli();
  if (bundle) {
    const { main } = await import(bundle);
    process.exitCode = await main(process.argv.slice(2));
  } else await runThroughTsx();
}

async function runThroughTsx() {
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
