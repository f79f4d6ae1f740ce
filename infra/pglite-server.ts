/**
 * Embedded Postgres: PGlite served over the wire protocol, so Forge's one `postgres` client code
 * path runs against it exactly as against a real server. Run as its own process by `forge up`:
 *   node --import tsx infra/pglite-server.ts <data-dir> <port>
 */
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export async function servePglite(dataDir: string, port: number, host = '127.0.0.1') {
  const db = await PGlite.create({ dataDir, extensions: { pg_trgm } });
  // The multiplexer lets the CLI and the worker hold connections at once.
  const server = new PGLiteSocketServer({ db, port, host, maxConnections: 16 });
  await server.start();
  return {
    url: `postgres://postgres:postgres@${host}:${port}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dataDir, port] = process.argv.slice(2);
  if (!dataDir || !port) {
    process.stderr.write('usage: pglite-server.ts <data-dir> <port>\n');
    process.exit(2);
  }
  const srv = await servePglite(dataDir, Number(port));
  process.stderr.write(JSON.stringify({ msg: 'pglite listening', url: srv.url.replace(/:postgres@/, ':***@') }) + '\n');
  const shutdown = async () => {
    await srv.stop();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
