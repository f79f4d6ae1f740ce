/**
 * What a judged process writes to stdout and stderr: logs, never protocol. Each stream keeps its
 * head and its tail (the start says what ran, the end how it died); everything is counted, so a cut
 * is reported (`logsTruncated`, `logBytes`) instead of dropped silently, and both streams together
 * are held to the job's output limit, past which the judge stops the process.
 */
const KEEP_HEAD = 48 * 1024;
const KEEP_TAIL = 16 * 1024;

export class StreamLog {
  bytes = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;

  add(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.headBytes < KEEP_HEAD) {
      const take = chunk.subarray(0, KEEP_HEAD - this.headBytes);
      this.head.push(take);
      this.headBytes += take.length;
      chunk = chunk.subarray(take.length);
    }
    if (!chunk.length) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= KEEP_TAIL) this.tailBytes -= this.tail.shift()!.length;
  }

  get truncated(): boolean {
    return this.bytes > this.headBytes + Math.min(this.tailBytes, KEEP_TAIL);
  }

  /** The kept text: head, then a note of what was cut, then the tail; valid UTF-16 whatever was written. */
  text(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    const tailAll = Buffer.concat(this.tail);
    const tail = tailAll.subarray(Math.max(0, tailAll.length - KEEP_TAIL)).toString('utf8');
    const cut = this.bytes - this.headBytes - Math.min(tailAll.length, KEEP_TAIL);
    const joined = cut > 0 ? `${head}\n[… ${cut} bytes not kept …]\n${tail}` : head + tail;
    return (joined as string & { toWellFormed(): string }).toWellFormed();
  }
}

export class JudgedLogs {
  readonly stdout = new StreamLog();
  readonly stderr = new StreamLog();
  exceeded = false;

  constructor(
    private limit: number,
    private readonly onExceeded: () => void,
  ) {}

  take(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    this[stream].add(chunk);
    this.check();
  }

  /** The job's limit, once the job is known (what a process wrote before counts too). */
  setLimit(limit: number): void {
    this.limit = limit;
    this.check();
  }

  private check(): void {
    if (!this.exceeded && this.stdout.bytes + this.stderr.bytes > this.limit) {
      this.exceeded = true;
      this.onExceeded();
    }
  }

  /** The logs as the result carries them. */
  report(): { stdout: string; stderr: string; logsTruncated?: true; logBytes: { stdout: number; stderr: number } } {
    const truncated = this.exceeded || this.stdout.truncated || this.stderr.truncated;
    return {
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      ...(truncated ? { logsTruncated: true as const } : {}),
      logBytes: { stdout: this.stdout.bytes, stderr: this.stderr.bytes },
    };
  }
}
