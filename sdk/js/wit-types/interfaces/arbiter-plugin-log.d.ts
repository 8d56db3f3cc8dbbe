// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
declare module 'arbiter:plugin/log@0.2.0' {
  export function log(level: Level, message: string, fields: Array<[string, string]>): void;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
