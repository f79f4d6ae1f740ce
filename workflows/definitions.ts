/**
 * Signals, queries and updates, shared by workflows and clients (CLI, tests). Importing this file
 * pulls in only @temporalio/workflow's define* helpers, which are safe outside workflows.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ForgeProgress } from '../domain/forge.ts';
import type { TaskProgress } from '../domain/task.ts';

export const progressQuery = defineQuery<TaskProgress>('progress');
export const forgeProgressQuery = defineQuery<ForgeProgress & { frozen: boolean }>('forgeProgress');

/** A person's answer to "forge past today's budget?" (forge approve|reject <workflow id>). */
export const approveBudgetSignal = defineSignal<[{ approve: boolean; by?: string }]>('approveBudget');
