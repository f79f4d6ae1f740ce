import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * A minimal POSIX ustar writer. We write the sandbox rootfs ourselves (instead of
 * shelling out to `tar` or pulling in a tar library) so every entry gets exactly the
 * owner and mode we choose, whatever the host files look like, and so host files
 * stream straight into `docker import` without a staging copy.
 */
export type TarEntry =
  | { kind: 'dir'; path: string; mode?: number; uid?: number; gid?: number }
  | { kind: 'file'; path: string; mode?: number; uid?: number; gid?: number; data: Buffer }
  | { kind: 'hostFile'; path: string; mode?: number; uid?: number; gid?: number; source: string; size: number }
  | { kind: 'symlink'; path: string; target: string };

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the trailing NUL the format expects
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  const cut = path.lastIndexOf('/', 155);
  if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100) {
    throw new Error(`tar path too long for ustar: ${path}`);
  }
  return { name: path.slice(cut + 1), prefix: path.slice(0, cut) };
}

export function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(BLOCK, 0);
  const path = entry.path.replace(/^\/+/, '') + (entry.kind === 'dir' && !entry.path.endsWith('/') ? '/' : '');
  const { name, prefix } = splitName(path);
  const mode = entry.kind === 'symlink' ? 0o777 : (entry.mode ?? (entry.kind === 'dir' ? 0o755 : 0o644));
  const uid = entry.kind === 'symlink' ? 0 : (entry.uid ?? 0);
  const gid = entry.kind === 'symlink' ? 0 : (entry.gid ?? 0);
  const type = entry.kind === 'dir' ? '5' : entry.kind === 'symlink' ? '2' : '0';
  header.write(name, 0, 100, 'utf8');
  header.write(octal(mode, 8), 100, 8, 'ascii');
  header.write(octal(uid, 8), 108, 8, 'ascii');
  header.write(octal(gid, 8), 116, 8, 'ascii');
  header.write(octal(size, 12), 124, 12, 'ascii');
  header.write(octal(0, 12), 136, 12, 'ascii'); // mtime 0: deterministic layers
  header.write('        ', 148, 8, 'ascii'); // checksum placeholder (spaces while summing)
  header.write(type, 156, 1, 'ascii');
  if (entry.kind === 'symlink') header.write(entry.target, 157, 100, 'utf8');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return header;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest, 0);
}

async function* chunks(entries: TarEntry[]): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    if (entry.kind === 'file') {
      yield tarHeader(entry, entry.data.length);
      yield entry.data;
      yield padding(entry.data.length);
    } else if (entry.kind === 'hostFile') {
      yield tarHeader(entry, entry.size);
      let written = 0;
      for await (const chunk of createReadStream(entry.source)) {
        written += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      // A file that changed size under us would corrupt the archive: fail loudly instead.
      if (written !== entry.size) throw new Error(`${entry.source} changed size while archiving`);
      yield padding(entry.size);
    } else {
      yield tarHeader(entry, 0);
    }
  }
  yield Buffer.alloc(BLOCK * 2, 0);
}

/** The archive as a stream, suitable for docker.importImage / putArchive. */
export function tarStream(entries: TarEntry[]): Readable {
  return Readable.from(chunks(entries), { objectMode: false });
}
