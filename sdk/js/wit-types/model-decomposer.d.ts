// Generated from wit/v0.1.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./interfaces/arbiter-plugin-decomposition.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-log.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-model.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/model-decomposer@0.1.0' {
  export type * as ArbiterPluginLog010 from 'arbiter:plugin/log@0.1.0'; // import arbiter:plugin/log@0.1.0
  export type * as ArbiterPluginModel010 from 'arbiter:plugin/model@0.1.0'; // import arbiter:plugin/model@0.1.0
  export type * as ArbiterPluginTypes010 from 'arbiter:plugin/types@0.1.0'; // import arbiter:plugin/types@0.1.0
  export * as decomposition from 'arbiter:plugin/decomposition@0.1.0'; // export arbiter:plugin/decomposition@0.1.0
}
