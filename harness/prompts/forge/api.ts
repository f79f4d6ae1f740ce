import type { PartialApiSpec } from '../../../domain/openapi.ts';
import type { ApiCall } from '../../contract.ts';
import { TOOL_CONTRACT } from './contracts.ts';
import { fenced, json } from './shared.ts';

const SYSTEM = `You reverse-engineer HTTP APIs for Forge, an agent that writes its own tools. Given a tool's spec and, when available, API documentation or a draft derived from an OpenAPI document, call submit_api_spec.

- needsApi: false when the tool needs no HTTP API at all (it computes locally); then omit apiSpec.
- apiSpec.baseUrl: the API's base URL; its host must be one of the spec's permissions.network hosts.
- apiSpec.auth: kind 'none', 'bearer' (Authorization: Bearer), 'header' (name = the header), 'query' (name = the query parameter) or 'basic'; envVar = the spec's permissions.env variable that holds the secret (required unless kind is 'none').
- apiSpec.endpoints: only the endpoints the tool calls. For each: a unique id, method, path relative to baseUrl (with {param} placeholders), a description, safeRead (true only when one real call is harmless: a GET that changes nothing and costs nothing notable), the query parameters as one JSON Schema object, the JSON request body schema, the response JSON Schema (the fields the tool reads, with their types and which are required), a realistic example response (the mock API serves it to the tests, so make its values concrete and consistent), and the error statuses with their meaning (include 429 when the API rate-limits).
When a draft from an OpenAPI document is given, keep what is right in it, drop endpoints the tool does not need, and fill in what it lacks. Use only facts from the documentation or well-established knowledge of the API; never invent endpoints.

${TOOL_CONTRACT}`;

/** OpenAPI drafts of big APIs are cut to fit: endpoints beyond the budget are listed by method and path only. */
const MAX_DRAFT_CHARS = 60_000;
const MAX_DOCS_CHARS = 120_000;

function draftForPrompt(draft: PartialApiSpec, maxChars = MAX_DRAFT_CHARS): string {
  const kept: PartialApiSpec['endpoints'] = [];
  const listed: string[] = [];
  let size = JSON.stringify({ ...draft, endpoints: [] }).length;
  for (const e of draft.endpoints) {
    const n = JSON.stringify(e).length;
    if (size + n <= maxChars) {
      kept.push(e);
      size += n;
    } else listed.push(`${e.method} ${e.path}${e.description ? `: ${e.description.slice(0, 100)}` : ''}`);
  }
  const text = json({ ...draft, endpoints: kept });
  return listed.length
    ? `${text}\n${listed.length} more endpoint(s), left out for length:\n${listed.map((l) => `- ${l}`).join('\n')}`
    : text;
}

/** Step 2: the HTTP API the tool calls (or none), from documentation or an OpenAPI draft. */
export const api: ApiCall = {
  system: SYSTEM,
  tool: { name: 'submit_api_spec', description: 'Submit the API the tool calls, or needsApi false when it calls none.' },
  user: (input) => {
    const parts = [`Tool: ${input.spec.name}`, '', 'Spec:', json(input.spec)];
    if (input.draft) {
      parts.push(
        '',
        'Draft derived deterministically from the OpenAPI document (check it; keep only what the tool needs; auth.envVar must be set from the spec):',
        draftForPrompt(input.draft),
      );
    }
    if (input.apiDocs) {
      const docs =
        input.apiDocs.length > MAX_DOCS_CHARS
          ? `${input.apiDocs.slice(0, MAX_DOCS_CHARS)}\n… (${input.apiDocs.length - MAX_DOCS_CHARS} more characters left out)`
          : input.apiDocs;
      parts.push('', 'API documentation:', fenced('text', docs));
    }
    if (!input.draft && !input.apiDocs)
      parts.push(
        '',
        'No documentation was given: rely on well-established knowledge of the API, or answer needsApi false if the tool needs none.',
      );
    return parts.join('\n');
  },
  draft: draftForPrompt,
  maxTokens: 8192,
};
