import { z } from 'zod';
import { permissionsSchema, sideEffectSchema } from '../domain/tool.ts';
import { logEntrySchema, runnerErrorSchema } from './protocol.ts';

/** What the judged process may report on its channel (channel.ts), as the judge checks it. */
const jsonSchemaData = z.record(z.string(), z.unknown()).nullable();
const short = (max: number) => z.string().transform((s) => s.slice(0, max));

export const loadedFrameSchema = z.object({
  k: z.literal('loaded'),
  name: short(200),
  description: short(4000),
  sideEffect: sideEffectSchema.optional(),
  permissions: permissionsSchema,
  /** JSON Schema of manifest.input / manifest.output, read right after the module loaded; null: not a zod schema */
  schemas: z.object({ input: jsonSchemaData, output: jsonSchemaData }),
  /** built-ins the module changed while it loaded (Object.prototype.toJSON, JSON.stringify, ...) */
  tampered: z.array(short(200)).max(50),
  chosen: z.union([z.object({ input: z.unknown() }), z.object({ skipped: short(1000) })]).optional(),
});

export const resultFrameSchema = z.object({
  k: z.literal('result'),
  ok: z.boolean(),
  output: z.unknown().optional(),
  error: runnerErrorSchema.optional(),
  logs: z.array(logEntrySchema).max(500).default([]),
  tampered: z.array(short(200)).max(50).default([]),
});

/** A node:test reporter event, as the judged process's reporter saw it. */
export const eventFrameSchema = z.object({
  k: z.literal('event'),
  type: z.enum(['start', 'pass', 'fail']),
  name: short(500),
  nesting: z.number().int().min(0).max(100),
  suite: z.boolean(),
  skip: z.boolean(),
  todo: z.boolean(),
  ms: z.number().min(0),
  error: short(4000).optional(),
});

export const doneFrameSchema = z.object({ k: z.literal('done'), tampered: z.array(short(200)).max(50).default([]) });

/** checks mode: case `i` starts (so the judge knows which case was running if the process then stops). */
export const beginFrameSchema = z.object({ k: z.literal('begin'), i: z.number().int().min(0).max(100) });
/** checks mode: the mock API answered a request of case `i` (the judge times it as the report arrives). */
export const requestFrameSchema = z.object({
  k: z.literal('request'),
  i: z.number().int().min(0).max(100),
  method: short(16),
  status: z.number().int().nullable(),
  fault: short(40).optional(),
  /** the request past the bound: the mock refused it, and refuses every later one of this case */
  over: z.boolean().optional(),
});
/** checks mode: how case `i`'s call ended; the output is checked by the judge against the schema. */
export const caseFrameSchema = z.object({
  k: z.literal('case'),
  i: z.number().int().min(0).max(100),
  ok: z.boolean(),
  output: z.unknown().optional(),
  error: runnerErrorSchema.optional(),
  tampered: z.array(short(200)).max(50).default([]),
});
/** The module could not even be loaded (or its manifest is not a tool's). */
export const errorFrameSchema = z.object({ k: z.literal('error'), error: runnerErrorSchema });

export const frameSchema = z.discriminatedUnion('k', [
  loadedFrameSchema,
  resultFrameSchema,
  eventFrameSchema,
  doneFrameSchema,
  errorFrameSchema,
  beginFrameSchema,
  requestFrameSchema,
  caseFrameSchema,
]);
export type Frame = z.infer<typeof frameSchema>;
export type LoadedFrame = z.infer<typeof loadedFrameSchema>;
export type EventFrame = z.infer<typeof eventFrameSchema>;
export type CaseFrame = z.infer<typeof caseFrameSchema>;
export type RequestFrame = z.infer<typeof requestFrameSchema>;
