import type { ToolSpec } from './forge.ts';

/**
 * JSON Schemas for a tool's manifest.json, derived from its spec. The verified module's own zod
 * schemas are the runtime truth (the runner validates with them); these describe it for discovery
 * and for MCP clients.
 */
export function inputJsonSchema(spec: Pick<ToolSpec, 'parameters'>): Record<string, unknown> {
  return {
    type: 'object',
    properties: Object.fromEntries(spec.parameters.map((p) => [p.name, { type: p.type, description: p.description }])),
    required: spec.parameters.filter((p) => p.required).map((p) => p.name),
    additionalProperties: false,
  };
}

export function outputJsonSchema(spec: Pick<ToolSpec, 'returns'>): Record<string, unknown> {
  const known = ['string', 'number', 'integer', 'boolean', 'array', 'object'];
  return known.includes(spec.returns.type)
    ? { type: spec.returns.type, description: spec.returns.description }
    : { description: `${spec.returns.type}: ${spec.returns.description}` };
}
