/**
 * The plugin's settings for one pipeline: string keys and values as the operator wrote
 * them. Values that need structure are JSON text. Every accessor that fails throws
 * `InvalidConfig` naming the key, so a bad setting refuses the pipeline at load time.
 */
export declare class Config {
    #private;
    constructor(pairs?: Iterable<readonly [string, string]>);
    /** The last value given for `key` (later settings override earlier ones). */
    get(key: string): string | undefined;
    /** The value of `key`, or `InvalidConfig` naming it. */
    require(key: string): string;
    /**
     * Parses `key` (trimmed) with `parse`, falling back to `defaultValue` when absent.
     * Without `parse` the default's type decides: numbers parse as finite numbers,
     * booleans as true/false/yes/no/on/off/1/0, strings are kept. Use `Config.uint` for
     * counts. A parser signals a bad value by throwing; the error names the key.
     */
    parseOr<T>(key: string, defaultValue: T, parse?: (text: string) => T): T;
    /** Parses `key` as JSON (`undefined` when absent); invalid JSON names the key. */
    json(key: string): unknown;
    /** A comma-separated list setting; empty items are skipped. */
    list(key: string): string[];
    /**
     * Throws `InvalidConfig` when a key outside `known` is present, so typos in a
     * pipeline configuration are caught at load time rather than silently ignored.
     */
    denyUnknown(known: readonly string[]): void;
    pairs(): Array<[string, string]>;
    /** Same settings in the same order (what the SDK's per-configuration cache compares). */
    equals(other: Config): boolean;
    /** Parser: an integer (decimal digits, optional sign) that JavaScript holds exactly. */
    static int(text: string): number;
    /** Parser: a non-negative integer (as Rust's `usize`/`u32` settings are). */
    static uint(text: string): number;
    /** Parser: a finite number. */
    static number(text: string): number;
    /** Parser: true/false, yes/no, on/off or 1/0 (any case). */
    static bool(text: string): boolean;
}
