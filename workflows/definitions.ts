/**
 * Signals, queries and updates, shared by workflows and clients (CLI, tests). Importing this file
 * pulls in only @temporalio/workflow's define* helpers, which are safe outside workflows.
 */
import { defineQuery } from '@temporalio/workflow';
import type { TaskProgress } from '../domain/task.ts';

export const progressQuery = defineQuery<TaskProgress>('progress');
