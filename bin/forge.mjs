#!/usr/bin/env node
// The `forge` command. Forge runs its TypeScript directly through tsx: no build step to forget.
import { register } from 'tsx/esm/api';

register();
const [command, ...rest] = process.argv.slice(2);
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
