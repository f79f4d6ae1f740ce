import { z } from 'zod';

/**
 * The tool contract. A tool is a TypeScript module (tool.ts) exporting
 *   export const manifest = { name, description, sideEffect, destructive?, permissions, input, output }
 *   export async function run(input, ctx: ToolContext)
 * where `input`/`output` are zod schemas. All I/O goes through `ctx`.
 * On disk each version also has manifest.json: the JSON form of the manifest (schemas as JSON Schema)
 * plus registry data. This file holds the shared schemas; it is pure so workflows may import it.
 */

export const toolNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{1,62}$/, 'snake_case: lower-case letters, digits and _, starting with a letter');

export const domainSchema = z.string().regex(/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$/i, 'a host name such as api.example.com or *.example.com');

export const envVarSchema = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'an UPPER_SNAKE environment variable name');

export const sideEffectSchema = z.enum(['read', 'write']);
export type SideEffect = z.infer<typeof sideEffectSchema>;

export const permissionsSchema = z.object({
  network: z.array(domainSchema).default([]),
  env: z.array(envVarSchema).default([]),
});
export type Permissions = z.infer<typeof permissionsSchema>;

/** A JSON Schema document (as produced by z.toJSONSchema). Kept opaque on purpose. */
export const jsonSchemaSchema = z.record(z.string(), z.unknown());

/** What an API the tool talks to looks like: reverse-engineered from docs or an OpenAPI file. */
export const apiEndpointSchema = z.object({
  id: z.string().min(1),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z.string().startsWith('/'),
  description: z.string().default(''),
  /** true when one real call is harmless: the live smoke stage may use it */
  safeRead: z.boolean().default(false),
  query: jsonSchemaSchema.optional(),
  requestBody: jsonSchemaSchema.optional(),
  response: jsonSchemaSchema,
  /** a sample response body the mock API serves */
  example: z.unknown().optional(),
  errorCodes: z.array(z.object({ status: z.number().int(), meaning: z.string() })).default([]),
});

export const apiSpecSchema = z.object({
  baseUrl: z.string().url(),
  auth: z.object({
    kind: z.enum(['none', 'bearer', 'header', 'query', 'basic']),
    /** header or query parameter name for kind header/query */
    name: z.string().optional(),
    /** the environment variable that holds the secret */
    envVar: envVarSchema.optional(),
  }),
  endpoints: z.array(apiEndpointSchema).min(1),
});
export type ApiSpec = z.infer<typeof apiSpecSchema>;
export type ApiEndpoint = z.infer<typeof apiEndpointSchema>;

/** manifest.json beside each tool version. */
export const toolManifestSchema = z.object({
  name: toolNameSchema,
  version: z.number().int().min(1),
  description: z.string().min(1),
  sideEffect: sideEffectSchema,
  destructive: z.boolean().default(false),
  permissions: permissionsSchema,
  inputSchema: jsonSchemaSchema,
  outputSchema: jsonSchemaSchema,
  apiSpec: apiSpecSchema.optional(),
  createdAt: z.string(),
  createdBy: z.enum(['forge', 'rewrite', 'human']),
  sourceSha256: z.string().regex(/^[a-f0-9]{64}$/),
  status: z.enum(['verified', 'experimental', 'failed']).default('verified'),
});
export type ToolManifest = z.infer<typeof toolManifestSchema>;

/** The capability object a tool receives. Types only: implementations live in the sandbox runner. */
export interface ToolLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface ToolContext {
  /** fetch limited to the manifest's permissions.network; anything else rejects with a PermissionDenied error */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  /** only the manifest's permissions.env variables; others are absent */
  env: Readonly<Record<string, string | undefined>>;
  log: ToolLogger;
  /** aborted when the job's wall-clock budget runs out */
  signal: AbortSignal;
}
