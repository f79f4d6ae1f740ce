import type { ToolSpec } from '../../../domain/forge.ts';
import type { ApiSpec } from '../../../domain/tool.ts';

/** Generated sources are long; the default 4096 output tokens would cut them off. */
export const CODE_MAX_TOKENS = 16_000;

/** Fenced, so code in a prompt never reads as instructions; the fence grows if the text holds one. */
export function fenced(lang: string, text: string): string {
  const fence = '`'.repeat(Math.max(3, ...[...text.matchAll(/`{3,}/g)].map((m) => m[0].length + 1)));
  return `${fence}${lang}\n${text.replace(/\n$/, '')}\n${fence}`;
}

export const json = (v: unknown) => fenced('json', JSON.stringify(v, null, 2));

/** Every prompt after the spec starts with `Tool: <name>`, which scenario files match on. */
export function toolHeader(spec: ToolSpec, apiSpec: ApiSpec | null): string {
  return [
    `Tool: ${spec.name}`,
    '',
    'Spec:',
    json(spec),
    '',
    apiSpec
      ? `API spec (api-spec.json; the tests' mock API serves it):\n${json(apiSpec)}`
      : 'API spec: none (the tool calls no HTTP API; permissions.network stays empty).',
  ].join('\n');
}
