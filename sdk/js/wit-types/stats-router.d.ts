// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./interfaces/arbiter-plugin-log.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-routing.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-stats.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/stats-router@0.2.0' {
  export type * as ArbiterPluginLog020 from 'arbiter:plugin/log@0.2.0'; // import arbiter:plugin/log@0.2.0
  export type * as ArbiterPluginStats020 from 'arbiter:plugin/stats@0.2.0'; // import arbiter:plugin/stats@0.2.0
  export type * as ArbiterPluginTypes020 from 'arbiter:plugin/types@0.2.0'; // import arbiter:plugin/types@0.2.0
  export * as routing from 'arbiter:plugin/routing@0.2.0'; // export arbiter:plugin/routing@0.2.0
}
