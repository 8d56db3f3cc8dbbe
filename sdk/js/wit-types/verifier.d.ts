// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./interfaces/arbiter-plugin-log.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-types.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-verification.d.ts" />
declare module 'arbiter:plugin/verifier@0.2.0' {
  export type * as ArbiterPluginLog020 from 'arbiter:plugin/log@0.2.0'; // import arbiter:plugin/log@0.2.0
  export type * as ArbiterPluginTypes020 from 'arbiter:plugin/types@0.2.0'; // import arbiter:plugin/types@0.2.0
  export * as verification from 'arbiter:plugin/verification@0.2.0'; // export arbiter:plugin/verification@0.2.0
}
