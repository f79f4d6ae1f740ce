import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Forge's custom search attributes, so cycles can be filtered in the Temporal UI, e.g.
 * `ForgeCycleKind = "task"` or `ForgeToolName = "fetch_exchange_rate"`.
 */
export const SEARCH_ATTRIBUTES = {
  ForgeCycleKind: 'Keyword',
  ForgeToolName: 'Keyword',
} as const;

export const CYCLE_KIND = defineSearchAttributeKey('ForgeCycleKind', 'KEYWORD');
export const TOOL_NAME = defineSearchAttributeKey('ForgeToolName', 'KEYWORD');
