import { type LoadedTool, readableSchema } from './tool-module.ts';

/**
 * The input of the live stage's one real call (a call job with `chooseInput`, run by the judge like
 * any other call): given explicitly, else the schema's first example, else all defaults.
 */
export function chooseInput(tool: LoadedTool, given: string | undefined): { input: unknown } | { skipped: string } {
  if (given) return { input: JSON.parse(given) as unknown };
  // Not representable as JSON Schema: fall through to defaults.
  const schema = readableSchema(tool.input, 'input') as { examples?: unknown } | null;
  if (Array.isArray(schema?.examples) && schema.examples.length > 0) return { input: schema.examples[0] };
  if (tool.input.safeParse({}).success) return { input: {} };
  return { skipped: 'no input for the live call: add .meta({ examples: [{ ... }] }) to manifest.input, or pass a live input' };
}
