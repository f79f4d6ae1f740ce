import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { loadConfig } from '../../domain/config.ts';
import { ensureDatabaseServer } from '../../infra/postgres.ts';
import { freePort, PortTakenError, portOpen, runningPid, startDetached, stopService, waitFor } from '../../infra/processes.ts';
import { ensureTemporal } from '../../infra/temporal.ts';

// Two Forge homes on one machine, both on the default ports: the second home's forge up must not
// take the first one's Temporal server or embedded Postgres for its own (its workflows and data
// would land in the other home's), but say so, with the ports to set. A server this home started
// is its own and is used as it is.

let home: string;
let stranger: net.Server;
let strangerPort: number;

before(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-own-ports-'));
  strangerPort = await freePort();
  stranger = net.createServer((s) => s.destroy()).listen(strangerPort, '127.0.0.1');
  await new Promise((resolve) => stranger.once('listening', resolve));
});

after(() => {
  stranger.close();
  fs.rmSync(home, { recursive: true, force: true });
});

const cfgWith = (env: Record<string, string>) => loadConfig({ PATH: process.env.PATH, ...env }, home);

it('refuses a Temporal port held by a process this home did not start, naming the ports to set', async () => {
  const cfg = cfgWith({ TEMPORAL_PORT: String(strangerPort), TEMPORAL_UI_PORT: String(await freePort()) });
  await assert.rejects(ensureTemporal(cfg), (err: unknown) => {
    assert.ok(err instanceof PortTakenError);
    assert.match(err.message, new RegExp(`port ${strangerPort} is taken by a process this Forge home \\(${home}\\) did not start`));
    assert.match(
      err.fix ?? '',
      /free ports for FORGE_PGLITE_PORT, TEMPORAL_PORT, TEMPORAL_UI_PORT.*FORGE_DASHBOARD_PORT.*TEMPORAL_ADDRESS=127\.0\.0\.1:/,
    );
    return true;
  });
});

it('refuses an embedded Postgres port held by a process this home did not start; DATABASE_URL is the way to share one', async () => {
  await assert.rejects(ensureDatabaseServer(cfgWith({ FORGE_PGLITE_PORT: String(strangerPort) })), (err: unknown) => {
    assert.ok(err instanceof PortTakenError);
    assert.match(err.fix ?? '', /free ports for FORGE_PGLITE_PORT, .*FORGE_DASHBOARD_PORT.*DATABASE_URL/);
    return true;
  });
});

it('uses the Temporal server this home started, as it is', async () => {
  const port = await freePort();
  // A listener this home started and recorded, as forge up records its dev server.
  const pid = startDetached(home, {
    name: 'temporal',
    command: process.execPath,
    args: ['-e', `require('node:net').createServer((s) => s.destroy()).listen(${port}, '127.0.0.1')`],
  });
  try {
    await waitFor('the recorded listener', () => portOpen(port), 10_000);
    const endpoint = await ensureTemporal(cfgWith({ TEMPORAL_PORT: String(port) }));
    assert.equal(endpoint.started, false);
    assert.equal(endpoint.address, `127.0.0.1:${port}`);
    assert.equal(runningPid(home, 'temporal'), pid);
  } finally {
    await stopService(home, 'temporal');
  }
});
