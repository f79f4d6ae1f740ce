/**
 * JSON from the other side of a trust boundary, bounded BEFORE it is parsed: its size in bytes and
 * its nesting depth are measured on the text, so a 100k-deep or 1 GiB value is refused with its own
 * error instead of blowing the stack ("Maximum call stack size exceeded") or the heap of whoever
 * parses it. Used by the judge on what the judged process sends, and by the host on the judge's frame.
 */

export const MAX_JSON_DEPTH = 64;
/** A tool's output, as JSON. A model reads it; Temporal carries it (its payload limit is a few MiB). */
export const MAX_RESULT_BYTES = 1024 * 1024;

export type BoundedJsonError = 'RESULT_TOO_LARGE' | 'RESULT_TOO_DEEP' | 'RESULT_MALFORMED';
export type BoundedJson = { ok: true; value: unknown } | { ok: false; code: BoundedJsonError; message: string };

export interface JsonBounds {
  maxBytes: number;
  maxDepth: number;
}

/**
 * The deepest nesting of arrays and objects in a JSON text, counting only brackets outside strings;
 * stops as soon as `limit` is passed (then returns limit + 1). Malformed text is for JSON.parse to reject.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return deepest;
}

/** Parses `text` only when it fits the bounds; `what` names it in the errors ("the tool's result"). */
export function parseBoundedJson(text: string, bounds: JsonBounds, what: string): BoundedJson {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > bounds.maxBytes) {
    return { ok: false, code: 'RESULT_TOO_LARGE', message: `${what} is ${bytes} bytes of JSON, more than the ${bounds.maxBytes} allowed` };
  }
  if (jsonDepth(text, bounds.maxDepth) > bounds.maxDepth) {
    return { ok: false, code: 'RESULT_TOO_DEEP', message: `${what} nests deeper than ${bounds.maxDepth} levels of arrays/objects` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return {
      ok: false,
      code: 'RESULT_MALFORMED',
      message: `${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}
