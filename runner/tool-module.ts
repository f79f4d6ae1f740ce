import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ForgeError } from '../domain/errors.ts';
import { type Permissions, permissionsSchema, type SideEffect, sideEffectSchema, type ToolContext } from '../domain/tool.ts';

/**
 * Loads a bundled tool module and checks it has the shape of the tool contract
 * (domain/tool.ts). The schemas come from the tool's own copy of zod (esbuild inlines
 * it), so we check for the zod v4 interface instead of using instanceof.
 */
export interface ZodLike {
  safeParse(
    value: unknown,
  ): { success: true; data: unknown } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };
}

export interface LoadedTool {
  name: string;
  description: string;
  permissions: Permissions;
  /** what the module itself declares; a job's approved side effect (from manifest.json) wins over it */
  sideEffect?: SideEffect;
  input: ZodLike;
  output: ZodLike;
  run(input: unknown, ctx: ToolContext): Promise<unknown> | unknown;
}

export class ToolModuleError extends ForgeError {
  constructor(file: string, problem: string) {
    super(
      `the tool module ${file} is not a valid tool: ${problem}`,
      'TOOL_MODULE_INVALID',
      'export `manifest` ({ name, description, sideEffect, permissions, input, output } with zod schemas) and `run(input, ctx)`',
      { file, problem },
    );
  }
}

const isSchema = (v: unknown): v is ZodLike =>
  typeof v === 'object' && v !== null && typeof (v as { safeParse?: unknown }).safeParse === 'function';

const manifestShape = z.object({
  name: z.string().min(1),
  description: z.string().default(''),
  permissions: permissionsSchema.default({ network: [], env: [] }),
  sideEffect: sideEffectSchema.optional(),
});

export async function loadTool(file: string): Promise<LoadedTool> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ToolModuleError(file, `it failed to load: ${err instanceof Error ? err.message : String(err)}`);
  }
  const manifest = mod.manifest as Record<string, unknown> | undefined;
  const run = mod.run ?? (mod.default as Record<string, unknown> | undefined)?.run;
  if (!manifest || typeof manifest !== 'object') throw new ToolModuleError(file, 'no `manifest` export');
  if (typeof run !== 'function') throw new ToolModuleError(file, 'no `run` function export');
  if (!isSchema(manifest.input)) throw new ToolModuleError(file, '`manifest.input` is not a zod schema');
  if (!isSchema(manifest.output)) throw new ToolModuleError(file, '`manifest.output` is not a zod schema');
  const meta = manifestShape.safeParse(manifest);
  if (!meta.success) throw new ToolModuleError(file, meta.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return {
    ...meta.data,
    input: manifest.input,
    output: manifest.output,
    run: run as LoadedTool['run'],
  };
}

/**
 * The fields a caller sent that an object schema does not take, with the ones it does: zod drops
 * unknown keys silently and reports only "text: … received undefined", which leaves a caller who
 * wrote `txt` guessing. Undefined when the schema is not a plain zod object or nothing is unknown.
 */
export function unknownFields(schema: ZodLike, input: unknown): string | undefined {
  const shape = (schema as { shape?: unknown }).shape;
  if (!shape || typeof shape !== 'object' || !input || typeof input !== 'object' || Array.isArray(input)) return undefined;
  const known = Object.keys(shape);
  const unknown = Object.keys(input).filter((k) => !known.includes(k));
  if (!unknown.length) return undefined;
  return `not a parameter: ${unknown.join(', ')} (the parameters are: ${known.join(', ') || 'none'})`;
}

/** "a.b: expected string" lines, the form people (and the repair loop) read best. */
export function describeIssues(error: { issues: Array<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ');
}
