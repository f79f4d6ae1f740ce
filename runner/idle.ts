import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { JOB_DIR, type JobMessage, jobMessageSchema, nonceSchema, READY_MARKER, type RunnerResult } from './protocol.ts';

/**
 * Warm-pool mode. The container starts, we print READY, and wait for exactly ONE job
 * line on stdin. Everything after that first line stays on stdin for the job (serve
 * mode speaks MCP over it). The process exits after the job: one container, one job.
 */
export function readFirstLine(stdin: Readable): Promise<{ line: string; rest: PassThrough }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const rest = new PassThrough();
    const onData = (chunk: Buffer) => {
      const nl = chunk.indexOf(10);
      if (nl < 0) return void chunks.push(chunk);
      chunks.push(chunk.subarray(0, nl));
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      rest.write(chunk.subarray(nl + 1));
      // Hand the remainder of stdin to the job.
      stdin.pipe(rest);
      resolve({ line: Buffer.concat(chunks).toString('utf8'), rest });
    };
    const onEnd = () => reject(new Error('stdin closed before a job arrived'));
    stdin.on('data', onData);
    stdin.on('end', onEnd);
  });
}

export async function writeJobFiles(files: Record<string, string>): Promise<void> {
  await mkdir(JOB_DIR, { recursive: true });
  for (const [name, contents] of Object.entries(files)) {
    const target = path.join(JOB_DIR, name);
    // The schema already rejects .. segments; this double-checks the resolved path.
    if (!target.startsWith(JOB_DIR + '/')) throw new Error(`job file escapes ${JOB_DIR}: ${name}`);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, contents);
  }
}

export type JobHandler = (job: JobMessage, stdin: Readable) => Promise<RunnerResult | undefined>;

/** The host's nonce of a job line that is otherwise not valid, so even that refusal reaches the host. */
function nonceOf(line: string): string | undefined {
  try {
    const parsed = nonceSchema.safeParse((JSON.parse(line) as { nonce?: unknown } | null)?.nonce);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** `emit` gets the job's nonce: the host takes only a result frame that carries it. */
export async function idle(handle: JobHandler, emit: (r: RunnerResult, nonce?: string) => void): Promise<void> {
  process.stdout.write(READY_MARKER + '\n');
  const { line, rest } = await readFirstLine(process.stdin);
  let job: JobMessage;
  try {
    job = jobMessageSchema.parse(JSON.parse(line));
  } catch (err) {
    emit(
      {
        ok: false,
        durationMs: 0,
        logs: [],
        error: { code: 'JOB_INVALID', message: `the job message is not valid: ${err instanceof Error ? err.message : String(err)}` },
      },
      nonceOf(line),
    );
    return;
  }
  await writeJobFiles(job.files);
  // durationMs is the job's own time as the judge measured it (the judged code's, for call and test).
  const result = await handle(job, rest);
  if (result) emit(result, job.nonce);
}
