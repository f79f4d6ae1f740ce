/**
 * The model's side of the forge cycle: spec → API spec → tests → implementation → repair.
 * Each step is one structured call (client.ts), run as one Temporal activity. The prompts
 * are the harness's (harness.prompts.forge); this file keeps what judges the replies and what
 * crosses the activity boundary. Replies are checked beyond their schema where that is
 * cheap (names, exports, imports), as zod refinements on a per-call schema: a violation
 * goes back to the model through llm.structured's re-asks, and only then fails with an
 * LlmOutputError (non-retryable LlmOutputInvalid as an activity) saying what was wrong.
 */
import { z } from 'zod';
import { describeError, InvalidInputError } from '../../domain/errors.ts';
import {
  apiSpecReplySchema,
  forgeRequestSchema,
  implementationReplySchema,
  repairReplySchema,
  type ToolSpec,
  testsReplySchema,
  toolSpecSchema,
} from '../../domain/forge.ts';
import { openApiToPartialApiSpec, type PartialApiSpec } from '../../domain/openapi.ts';
import { type ApiSpec, apiSpecSchema, toolNameSchema } from '../../domain/tool.ts';
import { harness } from '../../harness/index.ts';
import { domainAllowed } from '../../runner/ctx.ts';
import { type Llm, promptedRequest } from './client.ts';

// ---- the names the metering table and scenario files key on (x-forge-purpose): not the harness's to change ----

export const FORGE_PURPOSES = {
  spec: 'forge.spec',
  api: 'forge.api',
  tests: 'forge.tests',
  implementation: 'forge.implementation',
  repair: 'forge.repair',
} as const;

// ---- cheap checks on replies, beyond their schemas ----

/** Static import/export specifiers, and whether each is type-only. A regex is enough: the static stage does the real parse. */
export function importsOf(source: string): { specifier: string; typeOnly: boolean }[] {
  const re = /^\s*(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  return [...source.matchAll(re)].map((m) => ({ specifier: m[2]!, typeOnly: Boolean(m[1]) }));
}

/** The string value of `key: '...'` inside `export const manifest = {`, without running anything. */
function manifestField(source: string, key: string): string | undefined {
  const start = source.search(/export\s+const\s+manifest\b/);
  if (start < 0) return undefined;
  const m = new RegExp(`\\b${key}\\s*:\\s*(['"\`])([^'"\`]*)\\1`).exec(source.slice(start));
  return m?.[2];
}

/** What is wrong with a tool.ts for this spec, in words the model can act on; [] when nothing cheap to see is. */
export function toolSourceProblems(source: string, spec: Pick<ToolSpec, 'name' | 'sideEffect'>): string[] {
  const problems: string[] = [];
  if (!/export\s+const\s+manifest\b/.test(source)) {
    problems.push('tool.ts must `export const manifest = { name, description, sideEffect, destructive, permissions, input, output }`');
  } else {
    const name = manifestField(source, 'name');
    if (name === undefined) problems.push(`manifest.name must be the string literal '${spec.name}'`);
    else if (name !== spec.name) problems.push(`manifest.name is '${name}' but the spec names the tool '${spec.name}': use '${spec.name}'`);
    const sideEffect = manifestField(source, 'sideEffect');
    if (sideEffect !== undefined && sideEffect !== spec.sideEffect) {
      problems.push(`manifest.sideEffect is '${sideEffect}' but the spec says '${spec.sideEffect}'`);
    }
  }
  if (!/export\s+(?:async\s+)?function\s+run\s*\(|export\s+const\s+run\s*=/.test(source)) {
    problems.push('tool.ts must `export async function run(input, ctx)`');
  }
  for (const { specifier, typeOnly } of importsOf(source)) {
    if (specifier === 'zod') continue;
    if (specifier === '@forge/tool') {
      if (!typeOnly) problems.push("import '@forge/tool' type-only: `import type { ToolContext } from '@forge/tool'`");
      continue;
    }
    problems.push(`tool.ts imports '${specifier}': a tool may import only 'zod' and, type-only, '@forge/tool'; do all I/O through ctx`);
  }
  return problems;
}

const TEST_IMPORTS = new Set(['node:test', 'node:assert', 'node:assert/strict', '@forge/testkit', '@forge/tool', 'zod', './tool.ts']);

/** What is wrong with a tool.test.ts, in words the model can act on. */
export function testsSourceProblems(tests: string): string[] {
  const problems: string[] = [];
  const specifiers = importsOf(tests).map((i) => i.specifier);
  for (const s of specifiers) {
    if (TEST_IMPORTS.has(s)) continue;
    const hint = s === './tool' || s === './tool.js' ? " (write './tool.ts')" : '';
    problems.push(`tool.test.ts imports '${s}'${hint}: tests may import only ${[...TEST_IMPORTS].map((x) => `'${x}'`).join(', ')}`);
  }
  if (!specifiers.includes('./tool.ts')) problems.push("tool.test.ts must import the tool from './tool.ts'");
  if (!specifiers.includes('node:test')) problems.push("tool.test.ts must use node:test: import { test } from 'node:test'");
  if (!/\b(?:test|it)\s*\(/.test(tests)) problems.push('tool.test.ts defines no test: call test(name, async () => { ... })');
  if (/\b(?:test|it|describe)\.(?:skip|todo)\b|\{\s*(?:skip|todo)\s*:\s*true/.test(tests)) {
    problems.push('tool.test.ts skips tests: skipped tests fail verification, so every test must run');
  }
  return problems;
}

/** The spec's own consistency, and the requested name. */
export function specProblems(spec: ToolSpec, requestedName?: string): string[] {
  const problems: string[] = [];
  if (requestedName && spec.name !== requestedName) {
    problems.push(`name is '${spec.name}' but the tool was requested as '${requestedName}': use exactly '${requestedName}'`);
  }
  if (spec.destructive && spec.sideEffect !== 'write') problems.push("destructive is true, so sideEffect must be 'write'");
  const seen = new Set<string>();
  for (const p of spec.parameters) {
    if (seen.has(p.name)) problems.push(`parameter '${p.name}' is listed twice`);
    seen.add(p.name);
  }
  return problems;
}

/** The API spec against the tool spec: the host must be declared and the secret must be a declared variable. */
export function apiSpecProblems(apiSpec: ApiSpec, spec: Pick<ToolSpec, 'permissions'>): string[] {
  const problems: string[] = [];
  const host = new URL(apiSpec.baseUrl).hostname;
  const network = spec.permissions.network;
  if (!domainAllowed(host, network)) {
    problems.push(
      `baseUrl host '${host}' is not among the spec's permissions.network (${network.join(', ') || 'none'}): use a declared host`,
    );
  }
  const { kind, envVar } = apiSpec.auth;
  if (kind !== 'none' && !envVar)
    problems.push(
      `auth.kind is '${kind}' but auth.envVar is missing: name the variable holding the secret (one of ${spec.permissions.env.join(', ') || 'none declared'})`,
    );
  if (kind !== 'none' && envVar && !spec.permissions.env.includes(envVar)) {
    problems.push(
      `auth.envVar '${envVar}' is not among the spec's permissions.env (${spec.permissions.env.join(', ') || 'none'}): use a declared variable`,
    );
  }
  const ids = apiSpec.endpoints.map((e) => e.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) problems.push(`endpoint id '${dup}' is used twice: ids must be unique`);
  return problems;
}

/** Adds each problem as an issue on `path`, so the retry tells the model exactly what to change. */
function report(ctx: z.RefinementCtx, problems: string[], path: (string | number)[]): void {
  for (const message of problems) ctx.addIssue({ code: 'custom', message, path });
}

// Per-call reply schemas: the base schema (what the model sees as JSON Schema) plus the checks above.

export function specReplySchema(requestedName?: string): z.ZodType<ToolSpec> {
  return toolSpecSchema.superRefine((spec, ctx) => report(ctx, specProblems(spec, requestedName), []));
}

export function apiReplySchema(spec: ToolSpec) {
  return apiSpecReplySchema.superRefine((reply, ctx) => {
    if (!reply.needsApi) return;
    if (!reply.apiSpec) return report(ctx, ['needsApi is true, so apiSpec is required'], ['apiSpec']);
    report(ctx, apiSpecProblems(reply.apiSpec, spec), ['apiSpec']);
  });
}

export const testsReplyCheckedSchema = testsReplySchema.superRefine((reply, ctx) =>
  report(ctx, testsSourceProblems(reply.tests), ['tests']),
);

export function implementationReplyCheckedSchema(spec: ToolSpec) {
  return implementationReplySchema.superRefine((reply, ctx) => report(ctx, toolSourceProblems(reply.source, spec), ['source']));
}

export function repairReplyCheckedSchema(spec: ToolSpec) {
  return repairReplySchema.superRefine((reply, ctx) => report(ctx, toolSourceProblems(reply.source, spec), ['source']));
}

// ---- activity inputs (checked: they cross the workflow boundary) ----

const maybeApiSpec = apiSpecSchema.nullable();

export const writeSpecInputSchema = z.object({ need: forgeRequestSchema.shape.need, name: toolNameSchema.optional() });
export const extractApiSpecInputSchema = z.object({
  spec: toolSpecSchema,
  apiDocs: forgeRequestSchema.shape.apiDocs,
  openApi: z.unknown().optional(),
});
export const writeTestsInputSchema = z.object({ spec: toolSpecSchema, apiSpec: maybeApiSpec });
export const writeImplementationInputSchema = writeTestsInputSchema.extend({ tests: z.string().min(1) });
export const repairInputSchema = writeImplementationInputSchema.extend({
  source: z.string().min(1),
  failures: z.string().min(1).max(100_000),
  attempt: z.number().int().min(1),
});

export type WriteSpecInput = z.input<typeof writeSpecInputSchema>;
export type ExtractApiSpecInput = z.input<typeof extractApiSpecInputSchema>;
export type WriteTestsInput = { spec: ToolSpec; apiSpec: ApiSpec | null };
export type WriteImplementationInput = WriteTestsInput & { tests: string };
export type RepairInput = WriteImplementationInput & { source: string; failures: string; attempt: number };

// ---- the activities ----

const prompts = harness.prompts.forge;

/** The model's side of each forge step; inputs are parsed by the activity layer. */
export function createForgeAuthor(llm: Llm) {
  return {
    async writeSpec({ need, name }: { need: string; name?: string }): Promise<ToolSpec> {
      const { value } = await llm.structured(
        promptedRequest(prompts.spec, { need, name }, { purpose: FORGE_PURPOSES.spec, schema: specReplySchema(name) }),
      );
      return value;
    },

    async extractApiSpec({ spec, apiDocs, openApi }: { spec: ToolSpec; apiDocs?: string; openApi?: unknown }): Promise<ApiSpec | null> {
      let draft: PartialApiSpec | undefined;
      if (openApi !== undefined && openApi !== null) {
        try {
          draft = openApiToPartialApiSpec(openApi);
        } catch (err) {
          if (err instanceof InvalidInputError) throw err;
          throw new Error(`could not read the OpenAPI document: ${describeError(err)}`, { cause: err });
        }
      }
      const { value } = await llm.structured(
        promptedRequest(prompts.api, { spec, apiDocs, draft }, { purpose: FORGE_PURPOSES.api, schema: apiReplySchema(spec) }),
      );
      return value.needsApi && value.apiSpec ? value.apiSpec : null;
    },

    async writeTests(parsed: WriteTestsInput): Promise<{ tests: string }> {
      const { value } = await llm.structured(
        promptedRequest(prompts.tests, parsed, { purpose: FORGE_PURPOSES.tests, schema: testsReplyCheckedSchema }),
      );
      return { tests: value.tests };
    },

    async writeImplementation(parsed: WriteImplementationInput): Promise<{ source: string }> {
      const { value } = await llm.structured(
        promptedRequest(prompts.implementation, parsed, {
          purpose: FORGE_PURPOSES.implementation,
          schema: implementationReplyCheckedSchema(parsed.spec),
        }),
      );
      return { source: value.source };
    },

    async repairImplementation(parsed: RepairInput): Promise<{ source: string; diagnosis: string }> {
      const { value } = await llm.structured(
        promptedRequest(prompts.repair, parsed, { purpose: FORGE_PURPOSES.repair, schema: repairReplyCheckedSchema(parsed.spec) }),
      );
      return { source: value.source, diagnosis: value.diagnosis };
    },
  };
}

export type ForgeAuthor = ReturnType<typeof createForgeAuthor>;
