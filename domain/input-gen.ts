import { z } from 'zod';

/**
 * Inputs Forge makes up for a tool from its input JSON Schema (what zod's toJSONSchema writes for
 * manifest.input), so that some of what a tool is checked on comes from Forge and not from the
 * tests the model wrote for it: the schema's own examples, and edge values — required fields
 * only, empty strings and arrays, the smallest and largest lengths and numbers the schema allows,
 * non-ASCII text, whitespace, zero — and a few seeded random ones.
 *
 * Pure and deterministic: the same schema and seed give the same inputs, in the same order, so a
 * repair is judged on the inputs the failure named. Every input is valid against the schema (those
 * that are not — a pattern no candidate fits — are dropped), so a tool that refuses one must say
 * why in an error, and one that crashes has a bug.
 */
export type JsonSchema = Record<string, unknown>;

export interface GeneratedInput {
  /** what the input exercises, in words a person (and a repair prompt) can use */
  name: string;
  input: unknown;
}

export interface GenerateOptions {
  seed: number;
  /** at most this many inputs (default 7) */
  max?: number;
}

type Strategy = 'typical' | 'minimal' | 'maximal' | 'unicode' | 'boundary' | 'random';

/** The longest string made up, whatever maxLength allows: long enough to find quadratic code and fixed buffers. */
export const LONG_STRING = 10_000;
const MAX_ARRAY = 10;
const MAX_RECORD = 3;
/** Deeper than this (a recursive schema) only required fields and no array items are made. */
const MAX_DEPTH = 6;
const HARD_DEPTH = 12;
const MAX_INPUT_BYTES = 256 * 1024;
export const DEFAULT_MAX_INPUTS = 7;

const TYPICAL_TEXT = 'hello world';
/** Accents, a combining mark, CJK, an emoji (two UTF-16 units), right-to-left script, a zero-width joiner. */
export const UNICODE_TEXT = 'Crème brûlée — naïve café, 東京 🚀 مرحبا Ω e\u0301 👩\u200d💻';
const LONG_TEXT = 'lorem ipsum dolor sit amet ';
const RANDOM_ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789   .,;:-_!?\'"/\\()[]{}@#%&*+=<>éüñçßøΩЖ東京한글🚀😀\t\n',
];
/** What a `pattern` is most often written for; each is used only where it matches. */
const PATTERN_CANDIDATES = [
  'ABC',
  'USD',
  'EUR',
  'abc',
  'a',
  'A',
  'x1',
  '0',
  '42',
  '123456',
  'hello',
  'hello-world',
  'hello_world',
  'HelloWorld',
  'NL',
  'US',
  'de',
  'en',
  'en-US',
  'user@example.com',
  'https://example.com/',
  'example.com',
  '2024-01-02',
  '2024-01-02T03:04:05Z',
  '03:04:05',
  '00000000-0000-4000-8000-000000000000',
  '192.0.2.1',
  '#ff00aa',
  '+15551234567',
  'a1b2c3',
];

const FORMAT_VALUES: Record<string, { typical: string; low?: string; high?: string; unicode?: string }> = {
  email: { typical: 'user@example.com', low: 'a@b.co', high: `${'a'.repeat(60)}@example.com` },
  uri: {
    typical: 'https://example.com/',
    high: `https://example.com/${'a'.repeat(200)}?q=1#top`,
    unicode: 'https://example.com/caf%C3%A9',
  },
  url: { typical: 'https://example.com/', high: `https://example.com/${'a'.repeat(200)}?q=1#top` },
  'date-time': { typical: '2024-01-02T03:04:05Z', low: '1970-01-01T00:00:00Z', high: '9999-12-31T23:59:59Z' },
  date: { typical: '2024-01-02', low: '1970-01-01', high: '9999-12-31' },
  time: { typical: '03:04:05', low: '00:00:00', high: '23:59:59' },
  uuid: { typical: '00000000-0000-4000-8000-000000000000', high: 'ffffffff-ffff-4fff-bfff-ffffffffffff' },
  ipv4: { typical: '192.0.2.1', low: '0.0.0.0', high: '255.255.255.255' },
  ipv6: { typical: '2001:db8::1', low: '::' },
  hostname: { typical: 'example.com' },
  'idn-email': { typical: 'user@example.com', unicode: 'josé@exämple.com' },
};

/** A small, fast, seedable PRNG (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from a name (FNV-1a), so each tool gets its own random inputs and keeps them across repairs. */
export function seedFrom(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

interface Gen {
  root: JsonSchema;
  strategy: Strategy;
  rand: () => number;
}

const isObject = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const pick = <T>(list: readonly T[], rand: () => number): T => list[Math.floor(rand() * list.length)]!;
const codePoints = (s: string) => [...s].length;
const NON_ASCII = /[^ -~\t\n\r]/;

function resolveRef(s: JsonSchema, root: JsonSchema): JsonSchema {
  let current = s;
  for (let hops = 0; typeof current.$ref === 'string' && hops < 10; hops++) {
    const ref = current.$ref as string;
    if (ref === '#') current = root;
    else if (ref.startsWith('#/')) {
      const target = ref
        .slice(2)
        .split('/')
        .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), root);
      if (!isObject(target)) return {};
      const { $ref: _, ...rest } = current;
      current = { ...target, ...rest };
    } else return {};
  }
  return current;
}

/** Text that fits [min, max] (min in code points, max in UTF-16 units, so both zod and JSON Schema agree). */
function fitText(text: string, min: number, max: number, pad: string): string {
  let out = '';
  let units = 0;
  for (const ch of text) {
    if (units + ch.length > max) break;
    out += ch;
    units += ch.length;
  }
  while (codePoints(out) < min && units + pad.length <= max) {
    out += pad;
    units += pad.length;
  }
  return out;
}

function repeatTo(text: string, length: number): string {
  return text.repeat(Math.ceil(length / text.length)).slice(0, length);
}

function matches(pattern: unknown, value: string): boolean {
  if (typeof pattern !== 'string') return true;
  try {
    return new RegExp(pattern, 'u').test(value);
  } catch {
    try {
      return new RegExp(pattern).test(value);
    } catch {
      return false;
    }
  }
}

function shortestOrLongest(pool: string[], longest: boolean): string {
  return pool.reduce((best, v) => ((longest ? v.length > best.length : v.length < best.length) ? v : best));
}

function genString(s: JsonSchema, g: Gen, hints: unknown[]): string {
  const min = num(s.minLength) ?? 0;
  const max = num(s.maxLength) ?? Number.POSITIVE_INFINITY;
  const fits = (v: unknown): v is string => typeof v === 'string' && codePoints(v) >= min && v.length <= max && matches(s.pattern, v);
  const format = typeof s.format === 'string' ? FORMAT_VALUES[s.format] : undefined;
  if (typeof s.pattern === 'string' || format) {
    const byStrategy =
      g.strategy === 'minimal' || g.strategy === 'boundary'
        ? format?.low
        : g.strategy === 'maximal'
          ? format?.high
          : g.strategy === 'unicode'
            ? format?.unicode
            : undefined;
    const pool = [
      ...new Set([
        byStrategy,
        ...hints,
        s.default,
        ...(Array.isArray(s.examples) ? s.examples : []),
        format?.typical,
        ...PATTERN_CANDIDATES,
      ]),
    ].filter(fits);
    if (pool.length) {
      if (byStrategy !== undefined && fits(byStrategy)) return byStrategy;
      switch (g.strategy) {
        case 'minimal':
        case 'boundary':
          return shortestOrLongest(pool, false);
        case 'maximal':
          return shortestOrLongest(pool, true);
        case 'unicode':
          return pool.find((v) => NON_ASCII.test(v)) ?? pool[0]!;
        case 'random':
          return pick(pool, g.rand);
        default:
          return pool[0]!;
      }
    }
    // Nothing known fits the pattern: an example would; without one the input is dropped by validation.
    return typeof hints[0] === 'string' ? hints[0] : 'sample';
  }
  const cap = Math.min(max, LONG_STRING);
  switch (g.strategy) {
    case 'typical': {
      const hint = hints.find(fits);
      return hint ?? fitText(TYPICAL_TEXT, min, max, 'x');
    }
    case 'minimal':
      return 'x'.repeat(min);
    case 'maximal':
      return repeatTo(LONG_TEXT, Math.max(min, cap));
    case 'unicode':
      return fitText(UNICODE_TEXT, min, max, 'é');
    case 'boundary':
      return fitText(' \t ', Math.max(min, 1), max, ' ');
    case 'random': {
      const hi = Math.min(cap, min + 40);
      const length = min + Math.floor(g.rand() * (hi - min + 1));
      let out = '';
      while (codePoints(out) < length) {
        const ch = pick(RANDOM_ALPHABET, g.rand);
        if (out.length + ch.length > max) break;
        out += ch;
      }
      return codePoints(out) >= min ? out : fitText(out, min, max, 'x');
    }
  }
}

function genNumber(s: JsonSchema, g: Gen, integer: boolean, hints: unknown[]): number {
  const multiple = num(s.multipleOf);
  const step = multiple ?? (integer ? 1 : 0.001);
  let lo = num(s.minimum);
  let hi = num(s.maximum);
  const xlo = num(s.exclusiveMinimum);
  const xhi = num(s.exclusiveMaximum);
  if (xlo !== undefined) lo = Math.max(lo ?? Number.NEGATIVE_INFINITY, integer ? Math.floor(xlo) + 1 : xlo + step);
  if (xhi !== undefined) hi = Math.min(hi ?? Number.POSITIVE_INFINITY, integer ? Math.ceil(xhi) - 1 : xhi - step);
  if (integer) {
    if (lo !== undefined) lo = Math.max(Math.ceil(lo), Number.MIN_SAFE_INTEGER);
    if (hi !== undefined) hi = Math.min(Math.floor(hi), Number.MAX_SAFE_INTEGER);
  }
  const inRange = (v: number) => (lo === undefined || v >= lo) && (hi === undefined || v <= hi);
  const clamp = (v: number) => Math.min(hi ?? v, Math.max(lo ?? v, v));
  const fit = (v: number) => {
    let out = clamp(v);
    if (multiple) {
      out = Math.round(out / multiple) * multiple;
      if (!inRange(out)) out += lo !== undefined && out < lo ? multiple : -multiple;
    }
    return integer ? Math.round(out) : out;
  };
  switch (g.strategy) {
    case 'typical':
    case 'unicode': {
      const hint = hints.find((h): h is number => typeof h === 'number' && inRange(h) && (!integer || Number.isInteger(h)));
      return hint ?? fit(integer ? 7 : 2.5);
    }
    case 'minimal':
      return fit(lo ?? (integer ? Number.MIN_SAFE_INTEGER : -1e12));
    case 'maximal':
      return fit(hi ?? (integer ? Number.MAX_SAFE_INTEGER : 1e12));
    case 'boundary':
      if (inRange(0)) return fit(0);
      return fit(lo !== undefined ? lo + step : (hi ?? 0) - step);
    case 'random': {
      // Within the bounds; a side that is open (or as far out as zod's safe-integer bounds) is 2000 from the other, or from 0.
      const softLo = lo !== undefined && lo > -1e6 ? lo : undefined;
      const softHi = hi !== undefined && hi < 1e6 ? hi : undefined;
      const from = softLo ?? (softHi !== undefined ? softHi - 2000 : -1000);
      const to = softHi ?? from + 2000;
      const v = from + g.rand() * (to - from);
      return fit(integer ? Math.round(v) : Math.round(v * 100) / 100);
    }
  }
}

/** For anyOf / oneOf / a list of types: which branch this strategy takes. */
function pickIndex(count: number, nullAt: number, g: Gen): number {
  switch (g.strategy) {
    case 'minimal':
      return Math.max(nullAt, 0);
    case 'maximal':
      return count - 1 === nullAt && count > 1 ? count - 2 : count - 1;
    case 'random':
      return Math.floor(g.rand() * count);
    default:
      return nullAt === 0 && count > 1 ? 1 : 0;
  }
}

function inferType(s: JsonSchema, g: Gen): string | undefined {
  if (Array.isArray(s.type)) {
    const types = s.type.filter((t): t is string => typeof t === 'string');
    if (!types.length) return undefined;
    return types[pickIndex(types.length, types.indexOf('null'), g)];
  }
  if (typeof s.type === 'string') return s.type;
  if (isObject(s.properties) || isObject(s.additionalProperties)) return 'object';
  if (s.items !== undefined || Array.isArray(s.prefixItems)) return 'array';
  if (s.minLength !== undefined || s.maxLength !== undefined || s.pattern !== undefined || s.format !== undefined) return 'string';
  if (s.minimum !== undefined || s.maximum !== undefined) return 'number';
  return undefined;
}

function hintsAt(hints: unknown[], key: string | number): unknown[] {
  return hints
    .map((h) => (isObject(h) || Array.isArray(h) ? (h as Record<string | number, unknown>)[key] : undefined))
    .filter((h) => h !== undefined);
}

function arrayLength(min: number, max: number, g: Gen, depth: number): number {
  if (depth > MAX_DEPTH) return min;
  const cap = Math.max(min, Math.min(max, MAX_ARRAY));
  switch (g.strategy) {
    case 'minimal':
      return min;
    case 'maximal':
      return cap;
    case 'unicode':
      return Math.min(cap, Math.max(min, 2));
    case 'random':
      return min + Math.floor(g.rand() * (Math.min(cap, min + 4) - min + 1));
    default:
      return Math.min(cap, Math.max(min, 1));
  }
}

function genArray(s: JsonSchema, g: Gen, hints: unknown[], depth: number): unknown[] {
  const min = num(s.minItems) ?? 0;
  const max = num(s.maxItems) ?? Number.POSITIVE_INFINITY;
  const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
  const length = Math.max(prefix.length ? Math.min(prefix.length, max) : 0, arrayLength(min, max, g, depth));
  const out: unknown[] = [];
  for (let i = 0; i < length; i++) {
    const itemSchema = i < prefix.length ? prefix[i] : s.items;
    if (itemSchema === false) break;
    out.push(gen(itemSchema, g, hintsAt(hints, i), depth + 1));
  }
  if (s.uniqueItems !== true) return out;
  const seen = new Set<string>();
  return out.filter((v) => {
    const key = JSON.stringify(v);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function genObject(s: JsonSchema, g: Gen, hints: unknown[], depth: number): Record<string, unknown> {
  const props = isObject(s.properties) ? s.properties : {};
  const required = new Set(Array.isArray(s.required) ? s.required.filter((k): k is string => typeof k === 'string') : []);
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(props)) {
    const include = required.has(key) || (depth <= MAX_DEPTH && g.strategy !== 'minimal' && (g.strategy !== 'random' || g.rand() < 0.5));
    if (!include) continue;
    const value = gen(schema, g, hintsAt(hints, key), depth + 1);
    if (value !== undefined) out[key] = value;
  }
  for (const key of required) if (!(key in out)) out[key] = gen(undefined, g, [], depth + 1);
  const extra = s.additionalProperties;
  if (Object.keys(props).length === 0 && isObject(extra)) {
    const count =
      g.strategy === 'minimal' || depth > MAX_DEPTH
        ? 0
        : g.strategy === 'maximal'
          ? MAX_RECORD
          : g.strategy === 'random'
            ? Math.floor(g.rand() * 3)
            : 1;
    const keys = g.strategy === 'unicode' ? ['clé', '東京', 'emoji🚀'] : ['key', 'other_key', 'third'];
    for (let i = 0; i < count; i++) out[keys[i]!] = gen(extra, g, [], depth + 1);
  }
  return out;
}

function genAny(g: Gen): unknown {
  switch (g.strategy) {
    case 'minimal':
      return null;
    case 'maximal':
      return repeatTo(LONG_TEXT, LONG_STRING);
    case 'unicode':
      return UNICODE_TEXT;
    case 'boundary':
      return 0;
    case 'random':
      return pick([null, true, 0, 'sample', [], {}], g.rand);
    default:
      return 'sample';
  }
}

function gen(schema: unknown, g: Gen, hints: unknown[], depth: number): unknown {
  if (schema === undefined || schema === true) return genAny(g);
  if (!isObject(schema) || depth > HARD_DEPTH) return null;
  const s = resolveRef(schema, g.root);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) {
    const values = s.enum;
    const hint = hints.find((h) => values.some((v) => JSON.stringify(v) === JSON.stringify(h)));
    if (g.strategy === 'typical' && hint !== undefined) return hint;
    if (g.strategy === 'unicode') return values.find((v) => typeof v === 'string' && NON_ASCII.test(v)) ?? values[0];
    return values[pickIndex(values.length, values.indexOf(null), g)];
  }
  const options = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
  if (options?.length) {
    const nullAt = options.findIndex((o) => isObject(o) && o.type === 'null');
    const { anyOf: _a, oneOf: _o, ...rest } = s;
    const chosen = options[pickIndex(options.length, nullAt, g)];
    return gen(isObject(chosen) ? { ...rest, ...chosen } : chosen, g, hints, depth + 1);
  }
  if (Array.isArray(s.allOf) && s.allOf.length) {
    const { allOf, ...rest } = s;
    const merged: JsonSchema = { ...rest };
    for (const part of allOf) if (isObject(part)) Object.assign(merged, resolveRef(part, g.root));
    return gen(merged, g, hints, depth + 1);
  }
  switch (inferType(s, g)) {
    case 'string':
      return genString(s, g, hints);
    case 'integer':
      return genNumber(s, g, true, hints);
    case 'number':
      return genNumber(s, g, false, hints);
    case 'boolean': {
      const hint = hints.find((h) => typeof h === 'boolean');
      if (g.strategy === 'typical' && hint !== undefined) return hint;
      return g.strategy === 'minimal' || g.strategy === 'boundary' ? false : g.strategy === 'random' ? g.rand() < 0.5 : true;
    }
    case 'null':
      return null;
    case 'array':
      return genArray(s, g, hints, depth);
    case 'object':
      return genObject(s, g, hints, depth);
    default:
      return genAny(g);
  }
}

/** One value for the schema with one strategy (exported for tests). */
export function generateValue(schema: JsonSchema, strategy: Strategy, seed = 1): unknown {
  const examples = Array.isArray(schema.examples) ? schema.examples : [];
  return gen(schema, { root: schema, strategy, rand: seededRandom(seed) }, examples, 0);
}

/** A check that a value fits the schema, or undefined when zod cannot read the schema (nothing is then dropped). */
function validatorFor(schema: JsonSchema): ((value: unknown) => boolean) | undefined {
  try {
    const validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
    return (value) => validator.safeParse(value).success;
  } catch {
    return undefined;
  }
}

const NAMES: Array<[Strategy, string]> = [
  ['typical', 'typical values, every optional field given'],
  ['minimal', 'required fields only: empty strings and arrays, smallest numbers'],
  ['maximal', 'every optional field: longest strings, most items, largest numbers'],
  ['unicode', 'non-ASCII text: accents, CJK, emoji, right-to-left'],
  ['boundary', 'whitespace-only strings, zero, single items'],
];

/**
 * The inputs, most telling first: the schema's examples (at most two; without one, typical
 * values), then the edge cases, then seeded random ones; valid against the schema, distinct, at
 * most `max`. Empty only when nothing valid could be made (a pattern no candidate fits and no example).
 */
export function generateInputs(schema: JsonSchema, opts: GenerateOptions): GeneratedInput[] {
  const max = opts.max ?? DEFAULT_MAX_INPUTS;
  const valid = validatorFor(schema);
  const rand = seededRandom(opts.seed);
  const examples = Array.isArray(schema.examples) ? schema.examples : [];
  const out: GeneratedInput[] = [];
  const seen = new Set<string>();
  const add = (name: string, input: unknown) => {
    if (out.length >= max || input === undefined) return;
    const json = JSON.stringify(input);
    if (json === undefined || json.length > MAX_INPUT_BYTES || seen.has(json)) return;
    if (valid && !valid(input)) return;
    seen.add(json);
    out.push({ name, input });
  };
  for (const [i, example] of examples.slice(0, 2).entries())
    add(examples.length > 1 ? `the schema's example ${i + 1}` : "the schema's example", example);
  for (const [strategy, name] of NAMES) {
    if (strategy === 'typical' && out.length) continue;
    add(name, gen(schema, { root: schema, strategy, rand }, examples, 0));
  }
  let random = 0;
  for (let i = 0; out.length < max && i < 6; i++) {
    const before = out.length;
    add(`random values #${random + 1} (seed ${opts.seed})`, gen(schema, { root: schema, strategy: 'random', rand }, examples, 0));
    if (out.length > before) random += 1;
  }
  return out;
}

/** An input as one short line: long strings cut to their head and length, so a reason can name it. */
export function describeInput(input: unknown, maxChars = 300): string {
  let json: string;
  try {
    json =
      JSON.stringify(input, (_k, v: unknown) => (typeof v === 'string' && v.length > 60 ? `${v.slice(0, 40)}… (${v.length} chars)` : v)) ??
      'undefined';
  } catch {
    json = String(input);
  }
  return json.length > maxChars ? `${json.slice(0, maxChars)}…` : json;
}
