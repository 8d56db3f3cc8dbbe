// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./interfaces/arbiter-plugin-decomposition.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-log.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-model.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-routing.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-stats.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-types.d.ts" />
/// <reference path="./interfaces/arbiter-plugin-verification.d.ts" />
