import { z } from 'zod';

/**
 * Whether a call's input fits the tool's declared input schema, judged on the host before the
 * sandbox: a refusal here is the caller's slip (the model's), and the tool's code — which could
 * claim anything about its own failures — has no say in it. Undefined when the input fits, or when
 * the schema cannot be read as one (the sandbox then judges it, and a refusal there is the tool's).
 */
export function inputProblem(tool: string, inputSchema: Record<string, unknown>, input: unknown): string | undefined {
  let schema: z.ZodType;
  try {
    schema = z.fromJSONSchema(inputSchema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(input);
  const known = Object.keys((inputSchema.properties as Record<string, unknown> | undefined) ?? {});
  const unknown = input && typeof input === 'object' && !Array.isArray(input) ? Object.keys(input).filter((k) => !known.includes(k)) : [];
  const issues = parsed.success
    ? []
    : parsed.error.issues
        .filter((i) => i.code !== 'unrecognized_keys')
        .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`);
  if (unknown.length) issues.push(`not a parameter: ${unknown.join(', ')} (the parameters are: ${known.join(', ') || 'none'})`);
  return issues.length ? `invalid input for ${tool}: ${issues.join('; ')}` : undefined;
}
