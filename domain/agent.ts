import { z } from 'zod';

/**
 * The agent loop's vocabulary: the transcript it keeps (Messages API content blocks, as plain
 * data a workflow can hold), the tools it offers, what each call came to, and the bounds that stop it.
 */
export const agentLimitsSchema = z.strictObject({
  maxTurns: z.number().int().min(1).max(50).default(8),
  maxToolCalls: z.number().int().min(1).max(200).default(16),
  /** input + output tokens over every model turn of the task */
  maxTokens: z.number().int().min(1_000).max(5_000_000).default(300_000),
});
export type AgentLimits = z.output<typeof agentLimitsSchema>;

export interface TextBlock {
  type: 'text';
  text: string;
}
export interface ToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: unknown;
}
export interface ToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content: string;
  is_error?: boolean;
}
/**
 * Reference material sent with a user message (the Messages API's plain-text document), such as a
 * session's earlier exchanges: the model reads it as data the task refers to, not as instructions.
 */
export interface DocumentBlock {
  type: 'document';
  source: { type: 'text'; media_type: 'text/plain'; data: string };
  title?: string;
  context?: string;
}
export type ContentBlock = TextBlock | ToolUseBlock | ToolResultBlock | DocumentBlock;
export interface AgentMessage {
  role: 'user' | 'assistant';
  content: string | ContentBlock[];
}

/** A tool as the model sees it: a catalog tool (run in the sandbox) or one of the loop's own meta-tools. */
export interface OfferedTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  /** catalog tools only: the version the model was offered */
  version?: number;
}

/** One model turn, as the loop needs it. */
export interface AgentTurn {
  stopReason: string;
  content: (TextBlock | ToolUseBlock)[];
  tokens: { input: number; output: number };
}

/** The loop's own tools; a catalog tool may never take one of these names. */
export const META_TOOLS = {
  search: 'search_tools',
  forge: 'forge_tool',
  ask: 'ask_person',
} as const;

export const searchToolsInputSchema = z.strictObject({ query: z.string().trim().min(2).max(500) });
export const forgeToolInputSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_]{1,62}$/, 'a snake_case name')
    .optional(),
  description: z.string().trim().min(10).max(4000),
  parameters: z.string().max(4000).optional(),
  returns: z.string().max(2000).optional(),
  example: z.string().max(2000).optional(),
});
export const askPersonInputSchema = z.strictObject({ question: z.string().trim().min(3).max(2000) });

/** What one tool call of the loop came to; the task's result lists them in order. */
export interface AgentCall {
  turn: number;
  id: string;
  tool: string;
  version?: number;
  input: unknown;
  status: 'succeeded' | 'failed' | 'not-run';
  output?: unknown;
  reason?: string;
  /**
   * The model's own mistake, refused before the tool did anything: a tool it was not offered, or
   * input that does not fit the tool's schema. Not the tool's failure (never metered against it),
   * and made good by any later call that succeeds.
   */
  slip?: 'unknown-tool' | 'invalid-input';
  /** what the task did about a failure: retries of a transient one, the diagnosis, the repair or the escalation */
  recovery?: CallRecovery;
}

export interface CallRecovery {
  /** attempts after the first, for a failure that looked transient */
  retries: number;
  diagnosis?: { atFault: 'tool' | 'input' | 'environment'; fixable: boolean; diagnosis: string };
  /** the improve cycle that repaired (or failed to repair) the tool */
  repair?: { workflowId: string; status: string; toVersion?: number; reason: string };
  /** the approval a person got when the failure could not be repaired */
  escalation?: { approvalId?: string; decision: 'retry' | 'declined' | 'timed-out' };
}

/** A forge_tool request as the forge cycle's need: every detail the model gave, in words. */
export function forgeNeed(req: z.output<typeof forgeToolInputSchema>): string {
  return [
    req.description,
    req.parameters ? `Parameters: ${req.parameters}` : '',
    req.returns ? `Returns: ${req.returns}` : '',
    req.example ? `Example call: ${req.example}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** "create / build / make / write a tool that …": the user asks for a new tool, even when a similar one exists. */
export function explicitForgeRequest(task: string): boolean {
  return /\b(?:create|build|make|write|forge)\s+(?:me\s+)?(?:a|an|one)\s+(?:new\s+)?tool\b/i.test(task);
}

/** A tool result the model reads: JSON, clipped so one call can never flood the transcript. */
export function resultText(value: unknown, maxChars = 8_000): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}… (${text.length - maxChars} more characters cut)`;
}
