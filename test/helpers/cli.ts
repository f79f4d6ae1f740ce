import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { WorkflowHandle } from '@temporalio/client';
import type { TaskResult } from '../../domain/task.ts';
import { sleep } from '../../infra/processes.ts';
import { decideApprovalUpdate } from '../../workflows/definitions.ts';
import type { Harness } from './harness.ts';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the one JSON line a --json command prints */
  json(): Record<string, unknown>;
}

/** The environment a CLI process (or a server the CLI starts) needs to talk to a harness's Forge. */
export function harnessEnv(h: Harness, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    FORGE_HOME: h.home,
    DATABASE_URL: h.db.url,
    TEMPORAL_ADDRESS: h.cfg.TEMPORAL_ADDRESS,
    FORGE_TASK_QUEUE: h.cfg.FORGE_TASK_QUEUE,
    FORGE_SANDBOX_QUEUE: h.cfg.FORGE_SANDBOX_QUEUE,
    ...extra,
  };
}

/**
 * The real CLI in a child process against a harness's Forge, asynchronously: the workflow it talks
 * to runs on this process's in-process worker, which a blocking spawnSync would starve.
 */
export function harnessCli(h: Harness, opts: { user: string; timeoutMs: number; env?: Record<string, string> }) {
  return (...args: string[]): Promise<CliRun> => {
    const env = harnessEnv(h, { FORGE_USER: opts.user, ...opts.env });
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['bin/forge.mjs', ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: opts.timeoutMs,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({
          code,
          stdout,
          stderr,
          json() {
            const lines = stdout.trim().split('\n');
            assert.equal(lines.length, 1, `--json prints exactly one line, got:\n${stdout}\nstderr:\n${stderr}`);
            return JSON.parse(lines[0]!) as Record<string, unknown>;
          },
        }),
      );
    });
  };
}

/** Approves every confirmation or write a task asks for, and returns the task's result. */
export async function finishWithApprovals(h: Harness, handle: WorkflowHandle): Promise<TaskResult> {
  let done = false;
  const result = handle.result().finally(() => (done = true)) as Promise<TaskResult>;
  while (!done) {
    const [row] = await h.db.sql<
      { id: string }[]
    >`select id from approvals where workflow_id = ${handle.workflowId} and status = 'pending'`;
    if (row)
      await handle.executeUpdate(decideApprovalUpdate, { args: [{ approvalId: row.id, approve: true, by: 'tester' }] }).catch(() => {});
    await Promise.race([result.catch(() => {}), sleep(300)]);
  }
  return result;
}
