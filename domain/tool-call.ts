import type { Decision } from './ranking.ts';
import type { ApprovalDecision, TrustLevel } from './trust.ts';

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
  /** the call's input against the declared input schema, judged here, outside the tool: why it does not fit */
  inputProblem?: string;
}
