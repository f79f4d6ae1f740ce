import { pathToFileURL } from 'node:url';
import { ForgeError } from '../domain/errors.ts';
import type { Permissions, SideEffect, ToolContext } from '../domain/tool.ts';

/**
 * Loads a bundled tool module and checks it has the shape of the tool contract
 * (domain/tool.ts). The schemas come from the zod the tool's bundle imports (the image's,
 * ZOD_PATH in channel.ts), so we check for the zod v4 interface instead of using instanceof. This runs in the judged
 * process, which loads no zod of its own (it is most of its start-up time): the checks here are
 * plain code, and the judge validates what this process reports with zod again.
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

// As domainSchema and envVarSchema in domain/tool.ts (which would bring zod into the judged process).
const DOMAIN = /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$/i;
const ENV_VAR = /^[A-Z][A-Z0-9_]*$/;

function stringList(value: unknown, where: string, pattern: RegExp, expected: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${where}: expected an array`);
  return value.map((v, i) => {
    if (typeof v !== 'string' || !pattern.test(v)) throw new Error(`${where}.${i}: ${expected}`);
    return v;
  });
}

/** name, description, permissions and sideEffect, checked and with their defaults. */
function manifestMeta(manifest: Record<string, unknown>): Pick<LoadedTool, 'name' | 'description' | 'permissions' | 'sideEffect'> {
  const { name, description, permissions, sideEffect } = manifest;
  if (typeof name !== 'string' || !name) throw new Error('name: expected a non-empty string');
  if (description !== undefined && typeof description !== 'string') throw new Error('description: expected a string');
  if (permissions !== undefined && (typeof permissions !== 'object' || permissions === null))
    throw new Error('permissions: expected an object');
  if (sideEffect !== undefined && sideEffect !== 'read' && sideEffect !== 'write')
    throw new Error("sideEffect: expected 'read' or 'write'");
  const declared = (permissions ?? {}) as Record<string, unknown>;
  return {
    name,
    description: description ?? '',
    permissions: {
      network: stringList(declared.network, 'permissions.network', DOMAIN, 'a host name such as api.example.com or *.example.com'),
      env: stringList(declared.env, 'permissions.env', ENV_VAR, 'an UPPER_SNAKE environment variable name'),
    },
    ...(sideEffect ? { sideEffect } : {}),
  };
}

/** Evaluates the bundled module: its top-level code runs here. */
export async function importToolModule(file: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ToolModuleError(file, `it failed to load: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Checks a loaded module has the shape of the tool contract. */
export function toolFromModule(file: string, mod: Record<string, unknown>): LoadedTool {
  const manifest = mod.manifest as Record<string, unknown> | undefined;
  const run = mod.run ?? (mod.default as Record<string, unknown> | undefined)?.run;
  if (!manifest || typeof manifest !== 'object') throw new ToolModuleError(file, 'no `manifest` export');
  if (typeof run !== 'function') throw new ToolModuleError(file, 'no `run` function export');
  if (!isSchema(manifest.input)) throw new ToolModuleError(file, '`manifest.input` is not a zod schema');
  if (!isSchema(manifest.output)) throw new ToolModuleError(file, '`manifest.output` is not a zod schema');
  let meta: ReturnType<typeof manifestMeta>;
  try {
    meta = manifestMeta(manifest);
  } catch (err) {
    throw new ToolModuleError(file, (err as Error).message);
  }
  return {
    ...meta,
    input: manifest.input,
    output: manifest.output,
    run: run as LoadedTool['run'],
  };
}

export async function loadTool(file: string): Promise<LoadedTool> {
  return toolFromModule(file, await importToolModule(file));
}

/**
 * A schema as JSON Schema data the judge can check against in its own process, or null when it is not
 * a zod schema (or zod cannot express it). Read right after the module loads, before run() exists as
 * far as the judge is concerned: changing the schema object later changes nothing the judge holds.
 */
export function readableSchema(schema: ZodLike, io: 'input' | 'output'): Record<string, unknown> | null {
  const zod = schema as { _zod?: unknown; toJSONSchema?: (opts: { io: string; unrepresentable: string }) => unknown };
  if (!zod._zod || typeof zod.toJSONSchema !== 'function') return null;
  try {
    // The tool's zod (the image's copy of the host's zod, which the tool was type-checked against) writes it.
    const json = zod.toJSONSchema({ io, unrepresentable: 'any' });
    if (!json || typeof json !== 'object' || Array.isArray(json)) return null;
    const { $schema: _, ...rest } = json as Record<string, unknown>;
    return rest;
  } catch {
    return null;
  }
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
