import { z } from 'zod';
import { InvalidInputError } from './errors.ts';
import { type ApiEndpoint, type ApiSpec, apiEndpointSchema } from './tool.ts';

/**
 * OpenAPI (3.x) or Swagger (2.0) → the parts of an ApiSpec that can be read off the document
 * without judgement: base URL, endpoints (method, path, description, query/body/response
 * schemas, an example, error codes), auth kind, and which GETs look safe to call once live.
 * The forge's api step hands this to the model as a starting point; the model decides what
 * the tool actually needs (and the secret's variable name). Pure: no I/O, no YAML parser.
 */

export interface PartialApiSpec {
  baseUrl?: string;
  auth?: ApiSpec['auth'];
  endpoints: ApiEndpoint[];
  /** what could not be derived, and why: shown to the model with the draft */
  notes: string[];
}

type Json = Record<string, unknown>;

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
/** Refs nest (schemas within schemas); past this depth a cycle is assumed and cut. */
const MAX_REF_DEPTH = 12;
/** Ref expansions per endpoint (or per top-level lookup): bounds the work and the size on huge documents. */
const MAX_REFS_PER_ENDPOINT = 500;
/** Words in an operation's id or summary that say a GET changes something anyway. */
const MUTATING_WORDS = /\b(delete|remove|create|send|trigger|reset|revoke|purge|cancel|charge|pay|execute|run|start|stop)\b/i;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Accepts the document as a parsed object or as JSON text. */
export function parseOpenApiDocument(doc: unknown): Json {
  let value = doc;
  if (typeof doc === 'string') {
    try {
      value = JSON.parse(doc);
    } catch {
      throw new InvalidInputError(
        'OpenAPI document',
        'it is a string but not JSON (YAML is not parsed here): convert it to JSON, or pass it as apiDocs',
      );
    }
  }
  if (!isObject(value))
    throw new InvalidInputError('OpenAPI document', `expected a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  const version = typeof value.openapi === 'string' ? value.openapi : typeof value.swagger === 'string' ? value.swagger : undefined;
  if (!version) throw new InvalidInputError('OpenAPI document', 'it has neither an "openapi" nor a "swagger" version field');
  if (!isObject(value.paths))
    throw new InvalidInputError('OpenAPI document', 'it has no "paths" object, so there are no endpoints to read');
  return value;
}

/** Follows a local JSON pointer (#/components/schemas/X); undefined when it leads nowhere. */
function resolvePointer(root: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (isObject(node) ? node[key] : Array.isArray(node) ? node[Number(key)] : undefined), root);
}

/**
 * Inlines local $refs so each endpoint's schemas stand alone (api-spec.json has no
 * components section). Remote refs and cycles become an empty schema with a note.
 */
function deref(
  value: unknown,
  root: Json,
  notes: Set<string>,
  seen: readonly string[] = [],
  budget = { refs: MAX_REFS_PER_ENDPOINT },
): unknown {
  if (Array.isArray(value)) return value.map((v) => deref(v, root, notes, seen, budget));
  if (!isObject(value)) return value;
  if (typeof value.$ref === 'string') {
    const ref = value.$ref;
    if (seen.includes(ref) || seen.length >= MAX_REF_DEPTH) {
      notes.add(`recursive schema ${ref} was cut at its second use`);
      return { description: `recursive: see ${ref}` };
    }
    // Shared schemas reused everywhere would otherwise multiply the draft's size with each level.
    if (--budget.refs < 0) {
      notes.add(`some schemas were too large to inline in full; ${ref} and later refs were left as descriptions`);
      return { description: `omitted for size: see ${ref}` };
    }
    const target = resolvePointer(root, ref);
    if (target === undefined) {
      notes.add(`$ref ${ref} could not be resolved (only local refs are followed)`);
      return {};
    }
    return deref(target, root, notes, [...seen, ref], budget);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deref(v, root, notes, seen, budget)]));
}

/** servers[0].url (OpenAPI 3) or scheme://host/basePath (Swagger 2), without a trailing slash. */
function baseUrlOf(doc: Json, notes: Set<string>): string | undefined {
  if (Array.isArray(doc.servers) && isObject(doc.servers[0]) && typeof doc.servers[0].url === 'string') {
    const server = doc.servers[0];
    const vars = isObject(server.variables) ? server.variables : {};
    // {region} and the like: their declared defaults make a concrete URL.
    const url = (server.url as string).replace(/\{(\w+)\}/g, (whole, name: string) => {
      const v = vars[name];
      return isObject(v) && typeof v.default === 'string' ? v.default : whole;
    });
    if (!z.url().safeParse(url).success || !/^https?:\/\//.test(url)) {
      notes.add(`servers[0].url "${url}" is not an absolute http(s) URL: the base URL must come from the docs`);
      return undefined;
    }
    return url.replace(/\/$/, '');
  }
  if (typeof doc.host === 'string') {
    // Prefer https when offered; Swagger 2 defaults to the scheme the document was served with, which we do not know.
    const schemes = Array.isArray(doc.schemes) ? doc.schemes.filter((x): x is string => typeof x === 'string') : [];
    const scheme = schemes.includes('https') || schemes.length === 0 ? 'https' : schemes[0]!;
    const basePath = typeof doc.basePath === 'string' ? doc.basePath : '';
    return `${scheme}://${doc.host}${basePath}`.replace(/\/$/, '');
  }
  notes.add('the document names no server (servers[0].url or host): the base URL must come from the docs');
  return undefined;
}

/** The security scheme the API applies to every operation (or else the first one it defines). */
function authOf(doc: Json, notes: Set<string>): ApiSpec['auth'] {
  const components = isObject(doc.components) ? doc.components : {};
  const schemes = isObject(components.securitySchemes)
    ? components.securitySchemes
    : isObject(doc.securityDefinitions)
      ? doc.securityDefinitions
      : {};
  const required = Array.isArray(doc.security) ? doc.security.filter(isObject).flatMap((s) => Object.keys(s)) : [];
  const name = required.find((n) => n in schemes) ?? Object.keys(schemes)[0];
  const scheme = name === undefined ? undefined : deref(schemes[name], doc, notes);
  if (!isObject(scheme)) return { kind: 'none' };
  const type = String(scheme.type ?? '');
  const httpScheme = String(scheme.scheme ?? '').toLowerCase();
  if ((type === 'http' && httpScheme === 'bearer') || type === 'oauth2' || type === 'openIdConnect') {
    if (type !== 'http') notes.add(`security scheme "${name}" is ${type}: modelled as a bearer token the user supplies`);
    return { kind: 'bearer' };
  }
  if ((type === 'http' && httpScheme === 'basic') || type === 'basic') return { kind: 'basic' };
  if (type === 'apiKey' && typeof scheme.name === 'string') {
    if (scheme.in === 'header') return { kind: 'header', name: scheme.name };
    if (scheme.in === 'query') return { kind: 'query', name: scheme.name };
    notes.add(`security scheme "${name}" sends the key in a ${String(scheme.in)}, which api-spec.json cannot describe`);
  }
  notes.add(`security scheme "${name}" (${type}) is not understood: set auth by hand`);
  return { kind: 'none' };
}

/** A JSON body's schema (OpenAPI 3 content map); JSON-ish media types first. */
function jsonContent(content: unknown): Json | undefined {
  if (!isObject(content)) return undefined;
  const key = Object.keys(content).find((k) => /json/i.test(k)) ?? Object.keys(content)[0];
  const media = key === undefined ? undefined : content[key];
  return isObject(media) ? media : undefined;
}

function exampleOf(media: Json | undefined, schema: unknown): unknown {
  if (media && 'example' in media) return media.example;
  if (media && isObject(media.examples)) {
    const first = Object.values(media.examples)[0];
    if (isObject(first) && 'value' in first) return first.value;
  }
  if (isObject(schema) && 'example' in schema) return schema.example;
  return undefined;
}

/** Query parameters as one object schema, the way api-spec.json describes them. */
function querySchema(params: Json[]): Json | undefined {
  const query = params.filter((p) => p.in === 'query' && typeof p.name === 'string');
  if (query.length === 0) return undefined;
  const properties: Json = {};
  for (const p of query) {
    // OpenAPI 3 nests the schema; Swagger 2 puts type/format/enum on the parameter itself.
    const { name: _n, in: _i, required: _r, schema, ...rest } = p;
    const base = isObject(schema)
      ? schema
      : Object.fromEntries(
          Object.entries(rest).filter(([k]) => ['type', 'format', 'enum', 'items', 'default', 'pattern', 'minimum', 'maximum'].includes(k)),
        );
    properties[p.name as string] =
      typeof p.description === 'string' && !('description' in base) ? { ...base, description: p.description } : base;
  }
  const required = query.filter((p) => p.required === true).map((p) => p.name as string);
  return { type: 'object', properties, ...(required.length ? { required } : {}) };
}

function operationId(method: string, path: string, op: Json): string {
  if (typeof op.operationId === 'string' && op.operationId.trim()) return op.operationId.trim();
  const slug = path
    .replace(/\{(\w+)\}/g, 'by_$1')
    .replace(/[^a-zA-Z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
  return `${method}_${slug || 'root'}`;
}

function endpointOf(doc: Json, path: string, method: (typeof METHODS)[number], op: Json, shared: Json[], notes: Set<string>): ApiEndpoint {
  const budget = { refs: MAX_REFS_PER_ENDPOINT };
  const params = [...shared, ...(Array.isArray(op.parameters) ? op.parameters : [])]
    .map((p) => deref(p, doc, notes, [], budget))
    .filter(isObject);
  // An operation's own parameter overrides a path-level one of the same name and place.
  const byKey = new Map(params.map((p) => [`${String(p.in)}:${String(p.name)}`, p]));
  const merged = [...byKey.values()];

  const responses = isObject(op.responses) ? op.responses : {};
  const statuses = Object.keys(responses);
  const okKey =
    statuses.filter((s) => /^2\d\d$/.test(s)).sort()[0] ??
    (statuses.includes('2XX') ? '2XX' : statuses.includes('default') ? 'default' : undefined);
  const ok = okKey === undefined ? undefined : deref(responses[okKey], doc, notes, [], budget);
  const okMedia = isObject(ok) ? jsonContent(ok.content) : undefined;
  // Swagger 2 puts the schema on the response itself.
  const response = (okMedia && isObject(okMedia.schema) ? okMedia.schema : isObject(ok) && isObject(ok.schema) ? ok.schema : {}) as Json;
  const example = exampleOf(okMedia, response) ?? (isObject(ok) && isObject(ok.examples) ? jsonContent(ok.examples) : undefined);

  const body = isObject(op.requestBody) ? deref(op.requestBody, doc, notes, [], budget) : undefined;
  const bodyMedia = isObject(body) ? jsonContent(body.content) : undefined;
  const swaggerBody = merged.find((p) => p.in === 'body' && isObject(p.schema));
  const requestBody = bodyMedia && isObject(bodyMedia.schema) ? bodyMedia.schema : swaggerBody ? (swaggerBody.schema as Json) : undefined;

  const errorCodes = statuses
    .filter((s) => /^[45]\d\d$/.test(s))
    .map((s) => {
      const r = deref(responses[s], doc, notes, [], budget);
      return {
        status: Number(s),
        meaning: isObject(r) && typeof r.description === 'string' && r.description ? r.description : `HTTP ${s}`,
      };
    });

  const summary = [op.summary, op.description].find((t): t is string => typeof t === 'string' && t.trim() !== '') ?? '';
  const id = operationId(method, path, op);
  const mutates =
    op['x-side-effects'] === true ||
    MUTATING_WORDS.test(`${id.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ')} ${typeof op.summary === 'string' ? op.summary : ''}`);
  const query = querySchema(merged);
  return apiEndpointSchema.parse({
    id,
    method: method.toUpperCase(),
    path: path.startsWith('/') ? path : `/${path}`,
    description: summary.trim().slice(0, 500),
    safeRead: method === 'get' && !mutates && op.deprecated !== true,
    ...(query ? { query } : {}),
    ...(requestBody ? { requestBody } : {}),
    response,
    ...(example !== undefined ? { example } : {}),
    errorCodes,
  });
}

/** Everything the document says deterministically; throws InvalidInputError when it is not OpenAPI at all. */
export function openApiToPartialApiSpec(input: unknown): PartialApiSpec {
  const doc = parseOpenApiDocument(input);
  const notes = new Set<string>();
  const endpoints: ApiEndpoint[] = [];
  const skipped: string[] = [];
  for (const [path, rawItem] of Object.entries(doc.paths as Json)) {
    // A path item may itself be a $ref; its operations are inlined one by one below.
    const item = isObject(rawItem) && typeof rawItem.$ref === 'string' ? resolvePointer(doc, rawItem.$ref) : rawItem;
    if (!isObject(item)) continue;
    const shared = Array.isArray(item.parameters) ? item.parameters.filter(isObject) : [];
    for (const [key, op] of Object.entries(item)) {
      if (!isObject(op)) continue;
      const method = METHODS.find((m) => m === key.toLowerCase());
      if (method) endpoints.push(endpointOf(doc, path, method, op, shared, notes));
      else if (['head', 'options', 'trace'].includes(key.toLowerCase())) skipped.push(`${key.toUpperCase()} ${path}`);
    }
  }
  if (skipped.length)
    notes.add(`skipped ${skipped.length} HEAD/OPTIONS/TRACE operation(s): api-spec.json models GET, POST, PUT, PATCH, DELETE`);
  if (endpoints.length === 0) notes.add('the document defines no GET/POST/PUT/PATCH/DELETE operations');
  const baseUrl = baseUrlOf(doc, notes);
  const auth = authOf(doc, notes);
  return { ...(baseUrl ? { baseUrl } : {}), auth, endpoints, notes: [...notes] };
}
