/**
 * What the model is told when its reply did not fit the schema (the issues are zod's, or the
 * reply checks' in services/llm/forge-author.ts), before it is asked again.
 */
export function reask(toolName: string, issues: string): string {
  return `The ${toolName} input was rejected:\n${issues}\nCall ${toolName} again with input that fits its schema.`;
}
