import { InvalidConfig } from './types.js';

/**
 * The plugin's settings for one pipeline: string keys and values as the operator wrote
 * them. Values that need structure are JSON text. Every accessor that fails throws
 * `InvalidConfig` naming the key, so a bad setting refuses the pipeline at load time.
 */
export class Config {
  readonly #pairs: ReadonlyArray<readonly [string, string]>;

  constructor(pairs: Iterable<readonly [string, string]> = []) {
    // Index loops, not destructuring or `for...of`: the iterator protocol costs dozens of
    // interpreted operations per pair, and this runs on every call of a fresh instance.
    const list = Array.isArray(pairs) ? (pairs as ReadonlyArray<readonly [string, string]>) : Array.from(pairs);
    const own: Array<readonly [string, string]> = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const pair = list[i]!;
      own[i] = [String(pair[0]), String(pair[1])];
    }
    this.#pairs = own;
  }

  /** The last value given for `key` (later settings override earlier ones). */
  get(key: string): string | undefined {
    for (let i = this.#pairs.length - 1; i >= 0; i--) {
      const pair = this.#pairs[i];
      if (pair !== undefined && pair[0] === key) return pair[1];
    }
    return undefined;
  }

  /** The value of `key`, or `InvalidConfig` naming it. */
  require(key: string): string {
    const value = this.get(key);
    if (value === undefined) throw new InvalidConfig(`missing required setting \`${key}\``);
    return value;
  }

  /**
   * Parses `key` (trimmed) with `parse`, falling back to `defaultValue` when absent.
   * Without `parse` the default's type decides: numbers parse as finite numbers,
   * booleans as true/false/yes/no/on/off/1/0, strings are kept. Use `Config.uint` for
   * counts. A parser signals a bad value by throwing; the error names the key.
   */
  parseOr<T>(key: string, defaultValue: T, parse?: (text: string) => T): T {
    const raw = this.get(key);
    if (raw === undefined) return defaultValue;
    const text = raw.trim();
    const parser = parse ?? (inferParser(defaultValue) as (text: string) => T);
    try {
      return parser(text);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new InvalidConfig(`setting \`${key}\` = ${JSON.stringify(raw)}: ${why}`);
    }
  }

  /** Parses `key` as JSON (`undefined` when absent); invalid JSON names the key. */
  json(key: string): unknown {
    const raw = this.get(key);
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as unknown;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new InvalidConfig(`setting \`${key}\` is not JSON: ${why}`);
    }
  }

  /** A comma-separated list setting; empty items are skipped. */
  list(key: string): string[] {
    const raw = this.get(key);
    if (raw === undefined) return [];
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  /**
   * Throws `InvalidConfig` when a key outside `known` is present, so typos in a
   * pipeline configuration are caught at load time rather than silently ignored.
   */
  denyUnknown(known: readonly string[]): void {
    for (let i = 0; i < this.#pairs.length; i++) {
      const k = this.#pairs[i]![0];
      if (!known.includes(k)) {
        throw new InvalidConfig(`unknown setting \`${k}\` (known: ${known.join(', ')})`);
      }
    }
  }

  pairs(): Array<[string, string]> {
    return this.#pairs.map(([k, v]) => [k, v]);
  }

  /** Same settings in the same order (what the SDK's per-configuration cache compares). */
  equals(other: Config): boolean {
    const a = this.#pairs;
    const b = other.#pairs;
    return a.length === b.length && a.every((p, i) => p[0] === b[i]?.[0] && p[1] === b[i]?.[1]);
  }

  /** Parser: an integer (decimal digits, optional sign) that JavaScript holds exactly. */
  static int(text: string): number {
    if (!/^[+-]?\d+$/.test(text)) throw new Error('expected an integer');
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new Error('integer out of range');
    return n;
  }

  /** Parser: a non-negative integer (as Rust's `usize`/`u32` settings are). */
  static uint(text: string): number {
    if (!/^\+?\d+$/.test(text)) throw new Error('expected a non-negative integer');
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new Error('integer out of range');
    return n;
  }

  /** Parser: a finite number. */
  static number(text: string): number {
    const n = text === '' ? NaN : Number(text);
    if (!Number.isFinite(n)) throw new Error('expected a number');
    return n;
  }

  /** Parser: true/false, yes/no, on/off or 1/0 (any case). */
  static bool(text: string): boolean {
    switch (text.toLowerCase()) {
      case 'true':
      case 'yes':
      case 'on':
      case '1':
        return true;
      case 'false':
      case 'no':
      case 'off':
      case '0':
        return false;
      default:
        throw new Error('expected true or false');
    }
  }
}

function inferParser(defaultValue: unknown): (text: string) => unknown {
  switch (typeof defaultValue) {
    case 'number':
      return Config.number;
    case 'boolean':
      return Config.bool;
    case 'string':
      return (text: string) => text;
    default:
      throw new TypeError('parseOr needs a parser for defaults that are not numbers, booleans or strings');
  }
}
