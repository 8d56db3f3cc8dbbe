// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/stats@0.2.0' {
  /**
   * Statistics of `model`, restricted to tasks tagged `tag` when given; `none` when
   * nothing has been recorded yet.
   */
  export function query(model: string, tag: string | undefined): ModelStats | undefined;
  export type ModelStats = import('arbiter:plugin/types@0.2.0').ModelStats;
}
