/**
 * Signals, queries and updates, shared by workflows and clients (CLI, tests). Importing this file
 * pulls in only @temporalio/workflow's define* helpers, which are safe outside workflows.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { z } from 'zod';
import type { consentSchema, DeployProgress } from '../domain/deploy.ts';
import type { DirectCallProgress } from '../domain/direct-call.ts';
import type { EvolveProgress } from '../domain/evolve.ts';
import type { ForgeProgress } from '../domain/forge.ts';
import type { ImproveProgress } from '../domain/improve.ts';
import type { TaskProgress } from '../domain/task.ts';

export const progressQuery = defineQuery<TaskProgress>('progress');
export const forgeProgressQuery = defineQuery<ForgeProgress & { frozen: boolean; pendingApproval?: string }>('forgeProgress');
export const improveProgressQuery = defineQuery<ImproveProgress>('improveProgress');
export const evolveProgressQuery = defineQuery<EvolveProgress>('evolveProgress');
export const deployProgressQuery = defineQuery<DeployProgress>('deployProgress');
export const toolCallProgressQuery = defineQuery<DirectCallProgress>('toolCallProgress');

export interface ApprovalDecision {
  approvalId: string;
  approve: boolean;
  by?: string;
  /** the answer to a question (ask_person), when the approval is one */
  answer?: string;
}

/** A person's decision on a pending approval (forge approve|reject <id>). */
export const decideApprovalUpdate = defineUpdate<{ accepted: boolean; approvalId: string; approve: boolean }, [ApprovalDecision]>(
  'decideApproval',
);

/**
 * A person's consent to a verified harness candidate (forge evolve approve|reject, or the Temporal
 * UI). The validator refuses a consent for another candidate or another image digest, so a stale
 * one never enters the workflow's history.
 */
export const consentUpdate = defineUpdate<{ accepted: true; candidateId: string; approve: boolean }, [z.input<typeof consentSchema>]>(
  'consent',
);
