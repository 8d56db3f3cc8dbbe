// Finding the JSON value in an answer, exactly as the Rust `json-schema-verifier` does
// (`extract_json` over serde_json), so both verifiers see the same value in the same
// text: the whole (trimmed) answer, else in lenient mode the first fenced code block
// that parses, else the first `{` or `[` from which a value parses.
//
// Parsing uses the engine's native `JSON.parse`: a JSON parser written in JavaScript
// costs ~15,000 WebAssembly instructions per character inside a component (the engine
// interprets), so a 10 KB answer would take tens of milliseconds. `JSON.parse` and
// serde_json implement the same strict grammar; where serde_json is stricter (nesting,
// lone surrogate escapes, numbers out of range) the parsed value is checked.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** serde_json's recursion limit: 127 nested arrays/objects parse, 128 do not. */
const DEPTH_LIMIT = 128;

/** A lone surrogate: a leading one not followed by a trailing one, or a trailing one
 * not preceded by a leading one (code units: no `u` flag). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `value` (from `JSON.parse`) is what serde_json would also accept: nesting
 * of at most 127 arrays/objects, no lone surrogates (only escapes can produce them in
 * text that came in as UTF-8), no number that overflowed to infinity. */
function serdeAccepts(value: unknown, depth: number): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return true;
  if (depth + 1 >= DEPTH_LIMIT) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (!serdeAccepts(v, depth + 1)) return false;
    return true;
  }
  for (const key of Object.keys(value)) {
    if (LONE_SURROGATE.test(key)) return false;
    if (!serdeAccepts((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** The whole `text` as one JSON value (whitespace around it allowed), as
 * `serde_json::from_str`; `undefined` when it is not exactly one value. Both parsers
 * follow RFC 8259 strictly (no comments, trailing commas or leading zeros, JSON
 * whitespace only), let later duplicate keys win, and keep `__proto__` an ordinary own
 * key (answers are untrusted: no key can reach a prototype). */
export function parseWhole(text: string): Json | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // A syntax error, or the engine's own limit on absurd nesting: serde_json fails too.
    return undefined;
  }
  return serdeAccepts(value, 0) ? (value as Json) : undefined;
}

/** Search steps the lenient scan may take over one answer: a base plus one per 16
 * characters. A step costs ~10,000 instructions here (against a few in serde_json's
 * native code), so crafted input (tens of thousands of unclosed brackets) would
 * otherwise run into the call's deadline; such an answer counts as holding no JSON. No
 * answer a model writes comes near it: finding a value takes one step per bracket or
 * string in the text before and inside it. */
const SCAN_BASE_STEPS = 20_000;

/** Where the string whose opening quote is at `quote` ends (its closing quote), or -1. */
function stringEnd(text: string, quote: number): number {
  let at = quote;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** Where the array/object opening at `start` closes: brackets are counted and strings
 * skipped with native searches (a step per bracket or string, not per character).
 * Returns the closing bracket's index, -1 when there is none (or the nesting passes
 * serde_json's limit, where it fails too), or -2 when the budget ran out. */
function matchingClose(text: string, start: number, budget: { steps: number }): number {
  const token = /[[\]{}"]/g;
  token.lastIndex = start;
  let depth = 0;
  for (;;) {
    if (--budget.steps < 0) return -2;
    const m = token.exec(text);
    if (m === null) return -1;
    const c = m[0];
    if (c === '"') {
      const end = stringEnd(text, m.index);
      if (end < 0) return -1;
      token.lastIndex = end + 1;
    } else if (c === '{' || c === '[') {
      if (++depth >= DEPTH_LIMIT) return -1;
    } else if (--depth === 0) {
      return m.index;
    }
  }
}

/** Rust's `char::is_whitespace` (Unicode White_Space), which `str::trim` uses: unlike
 * `String.prototype.trim` it includes U+0085 and excludes U+FEFF. */
function isRustWhitespace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** `str::trim` of Rust. */
export function rustTrim(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isRustWhitespace(text.charCodeAt(start))) start++;
  while (end > start && isRustWhitespace(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

/** The JSON value in `text`: the whole text, else (lenient) the first fenced code block
 * or the first balanced `{...}` / `[...]` region that parses. */
export function extractJson(text: string, lenient: boolean): Json | undefined {
  const trimmed = rustTrim(text);
  const whole = parseWhole(trimmed);
  if (whole !== undefined) return whole;
  if (!lenient) return undefined;
  let rest = trimmed;
  for (;;) {
    const start = rest.indexOf('```');
    if (start < 0) break;
    const after = rest.slice(start + 3);
    // As the Rust verifier: the body starts after the first newline following the
    // opening fence (wherever it is), or right after the fence when there is none.
    const newline = after.indexOf('\n');
    const bodyStart = newline < 0 ? 0 : newline + 1;
    const end = after.indexOf('```', bodyStart);
    if (end < 0) break;
    const fenced = parseWhole(rustTrim(after.slice(bodyStart, end)));
    if (fenced !== undefined) return fenced;
    rest = after.slice(end + 3);
  }
  // A value opening at a bracket must end at the matching bracket (JSON is prefix-free),
  // so exactly that slice is what serde_json's stream deserializer would read there.
  const budget = { steps: SCAN_BASE_STEPS + (trimmed.length >> 4) };
  const opener = /[[{]/g;
  const run = /[[{ \t\n\r]*/y;
  for (let m = opener.exec(trimmed); m !== null; m = opener.exec(trimmed)) {
    // From an opener followed by 127 more (JSON whitespace between them allowed) no
    // value parses: serde_json reaches its recursion limit. Skip to the first opener of
    // such a run that has fewer ahead of it, in one native search.
    run.lastIndex = m.index;
    const span = run.exec(trimmed)?.[0] ?? '';
    if (span.length >= DEPTH_LIMIT) {
      let ahead = 0;
      let at = span.length;
      while (at > 0 && ahead < DEPTH_LIMIT - 1) {
        const c = span[--at];
        if (c === '[' || c === '{') ahead++;
      }
      if (at > 0) {
        opener.lastIndex = m.index + at;
        continue;
      }
    }
    const end = matchingClose(trimmed, m.index, budget);
    if (end === -2) return undefined;
    if (end < 0) continue;
    const v = parseWhole(trimmed.slice(m.index, end + 1));
    if (v !== undefined) return v;
  }
  return undefined;
}
