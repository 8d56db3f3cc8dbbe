// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./interfaces/arbiter-plugin-decomposition.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-log.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-model.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/model-decomposer@0.2.0' {
  export type * as ArbiterPluginLog020 from 'arbiter:plugin/log@0.2.0'; // import arbiter:plugin/log@0.2.0
  export type * as ArbiterPluginModel020 from 'arbiter:plugin/model@0.2.0'; // import arbiter:plugin/model@0.2.0
  export type * as ArbiterPluginTypes020 from 'arbiter:plugin/types@0.2.0'; // import arbiter:plugin/types@0.2.0
  export * as decomposition from 'arbiter:plugin/decomposition@0.2.0'; // export arbiter:plugin/decomposition@0.2.0
}
