// Globals the JavaScript engine inside a component (StarlingMonkey) provides that are
// not part of ECMAScript itself; `lib: ["ES2022"]` keeps browser and Node APIs, which a
// plugin does not have, out of the types.

interface Console {
  log(...data: unknown[]): void;
  info(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
  debug(...data: unknown[]): void;
}
declare var console: Console;

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string);
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
