import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadConfig } from '../../domain/config.ts';
import { ConfigError } from '../../domain/errors.ts';

it('uses embedded defaults when nothing is set', () => {
  const cfg = loadConfig({}, '/home/u/.forge');
  assert.equal(cfg.home, '/home/u/.forge');
  assert.equal(cfg.TEMPORAL_PORT, 7233);
  assert.equal(cfg.TEMPORAL_UI_PORT, 8233);
  assert.equal(cfg.DATABASE_URL, undefined);
  assert.equal(cfg.FORGE_DAILY_FORGE_BUDGET, 3);
});

it('names the variable, the value and what is expected when a value is wrong', () => {
  assert.throws(
    () => loadConfig({ TEMPORAL_ADDRESS: 'localhost' }, '/h'),
    (err: unknown) =>
      err instanceof ConfigError &&
      /TEMPORAL_ADDRESS="localhost" is not valid: expected host:port/.test(err.message) &&
      err.details?.variable === 'TEMPORAL_ADDRESS',
  );
  assert.throws(() => loadConfig({ FORGE_POOL_SIZE: 'many' }, '/h'), /FORGE_POOL_SIZE="many" is not valid/);
  assert.throws(
    () => loadConfig({ DATABASE_URL: 'mysql://x' }, '/h'),
    /DATABASE_URL="mysql:\/\/x" is not valid: expected a postgres:\/\/ URL/,
  );
});

it('a number setting says what it takes, from its own bounds, in the message and the fix', () => {
  for (const [variable, value, expected] of [
    ['FORGE_POOL_SIZE', 'lots', 'a whole number from 0 to 64'],
    ['FORGE_POOL_SIZE', '2.5', 'a whole number from 0 to 64'],
    ['TEMPORAL_PORT', 'abc', 'a whole number from 1 to 65535'],
    ['FORGE_PROBE_PASSES', '0', 'a whole number of at least 1'],
  ] as const)
    assert.throws(
      () => loadConfig({ [variable]: value }, '/h'),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message === `${variable}="${value}" is not valid: expected ${expected}` &&
        err.fix === `set ${variable} to ${expected}, or unset it to use the default`,
    );
});

it('treats empty strings as unset and coerces numbers and flags', () => {
  const cfg = loadConfig({ DATABASE_URL: '', FORGE_POOL_SIZE: '3', TEMPORAL_TLS: 'yes', FORGE_HOME: '/srv/forge' }, '/h');
  assert.equal(cfg.DATABASE_URL, undefined);
  assert.equal(cfg.FORGE_POOL_SIZE, 3);
  assert.equal(cfg.TEMPORAL_TLS, true);
  assert.equal(cfg.home, '/srv/forge');
});

it('the MCP endpoint: loopback port 8235 by default; a token too short is refused without being echoed', () => {
  const cfg = loadConfig({}, '/h');
  assert.deepEqual([cfg.FORGE_MCP_HTTP, cfg.FORGE_MCP_HOST, cfg.FORGE_MCP_PORT, cfg.FORGE_MCP_TOKEN], [true, '127.0.0.1', 8235, undefined]);
  assert.throws(
    () => loadConfig({ FORGE_MCP_TOKEN: 'hunter2' }, '/h'),
    (err: unknown) =>
      err instanceof ConfigError &&
      /^FORGE_MCP_TOKEN="\(7 characters, not shown\)" is not valid: expected a secret of at least 16 characters/.test(err.message) &&
      !JSON.stringify(err.toJSON()).includes('hunter2'),
  );
});
