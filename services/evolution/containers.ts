import type Docker from 'dockerode';

/** Small Docker helpers the replay's and the deployment's worker containers share. */

/** Removes a container by name with its anonymous volumes; one already gone is fine. */
export async function removeContainer(docker: Docker, name: string): Promise<void> {
  try {
    await docker.getContainer(name).remove({ force: true, v: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

/** A container's log (stdout and stderr, not a TTY: 8-byte frame headers), as text. */
export async function containerLog(container: Docker.Container, tail = 200): Promise<string> {
  const raw = (await container.logs({ stdout: true, stderr: true, tail, follow: false })) as unknown as Buffer;
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw));
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return (parts.length ? Buffer.concat(parts) : buf).toString('utf8');
}

/** The end of a log, with the first line that names an error (a stack trace's last lines rarely say what failed). */
export function lastLines(text: string, n = 10): string {
  const lines = text.trim().split('\n');
  const tail = lines.slice(-n);
  const first = lines.find((l) => /\b(error|ERROR)\b|Error:/.test(l));
  return (first && !tail.includes(first) ? [first, '…', ...tail] : tail).join('\n').slice(0, 3000);
}

/** Whether a container still runs; if not, what became of it (its exit code and last log lines). */
export async function containerState(container: Docker.Container): Promise<{ running: true } | { running: false; why: string }> {
  try {
    const info = await container.inspect();
    if (info.State.Running) return { running: true };
    return { running: false, why: `exited with code ${info.State.ExitCode}: ${lastLines(await containerLog(container).catch(() => ''))}` };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return { running: false, why: 'was removed from the Docker host' };
    throw err;
  }
}
