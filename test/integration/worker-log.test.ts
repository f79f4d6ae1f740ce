import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { freePort, sleep } from '../../infra/processes.ts';
import { freshDatabase, testConfig } from '../helpers/env.ts';
import { workerProcessEnv } from '../helpers/worker-process.ts';

// worker.log as forge up writes it (the worker's stderr into a file, no terminal): one JSON object
// a line, no ANSI escape codes — the Temporal SDK's lines included, and the Rust core's, which it
// writes when Temporal goes away under a polling worker (here: a relay to Temporal, cut).

let db: Awaited<ReturnType<typeof freshDatabase>>;
const cfg = testConfig({ FORGE_POOL_SIZE: '0' });
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-worker-log-'));

before(async () => {
  db = await freshDatabase();
});

after(async () => {
  await db.drop();
  fs.rmSync(home, { recursive: true, force: true });
});

/** A TCP relay to Temporal that the test can take away, as a network drop or a server going down would. */
async function relay(target: string) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    down.pipe(up);
    up.pipe(down);
  });
  const listen = await freePort();
  await new Promise<void>((r) => server.listen(listen, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${listen}`,
    down() {
      if (server.listening) server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

it("worker.log holds JSON lines only, the Temporal SDK's and its core's too, with no colour codes", async () => {
  const temporal = await relay(cfg.TEMPORAL_ADDRESS!);
  const logPath = path.join(home, 'worker.log');
  const out = fs.openSync(logPath, 'a');
  const worker = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    env: {
      ...workerProcessEnv(cfg, { databaseUrl: db.url, modelUrl: 'http://127.0.0.1:1', home }),
      TEMPORAL_ADDRESS: temporal.address,
      // The sandbox role starts in a second (no workflow bundle); FORGE_LOG_LEVEL as a person leaves it.
      FORGE_WORKER_ROLE: 'sandbox',
      FORGE_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const text = () => fs.readFileSync(logPath, 'utf8');
  const until = async (what: string, probe: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!probe()) {
      assert.equal(worker.exitCode, null, `the worker exited while waiting for ${what}:\n${text()}`);
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}:\n${text()}`);
      await sleep(250);
    }
  };
  try {
    await until('the worker to run', () => /"msg":"Worker state changed".*"state":"RUNNING"/.test(text()), 60_000);
    temporal.down();
    await until('the core to warn of its failing polls', () => /"level":"warn"[^\n]*"component":"temporal"/.test(text()), 90_000);
  } finally {
    worker.kill('SIGKILL');
    temporal.down();
  }
  const log = text();
  assert.ok(!log.includes('\x1b'), `no escape codes:\n${log}`);
  for (const line of log.split('\n').filter(Boolean)) {
    const entry = JSON.parse(line) as { t?: string; level?: string; msg?: string };
    assert.ok(entry.t && entry.level && entry.msg, line);
  }
});
