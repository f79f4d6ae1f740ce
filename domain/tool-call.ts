import { z } from 'zod';
import type { Decision } from './ranking.ts';
import type { ApprovalDecision, TrustLevel } from './trust.ts';

/** What the model returns when asked to fill a tool's input from a task. */
export const toolInputReplySchema = z.strictObject({
  input: z.record(z.string(), z.unknown()).describe("The tool's input object, matching its input JSON Schema"),
  reasoning: z.string().min(1).max(2000).describe('Why this tool and these arguments fit the task, in one or two sentences'),
});
export type ToolInputReply = z.infer<typeof toolInputReplySchema>;

export interface Discovery {
  decision: Decision;
  candidates: { name: string; similarity: number; score: number; level: TrustLevel }[];
}

export interface ToolGate {
  name: string;
  version: number;
  description: string;
  inputSchema: Record<string, unknown>;
  sideEffect: 'read' | 'write';
  destructive: boolean;
  level: TrustLevel;
  approval: ApprovalDecision;
}
