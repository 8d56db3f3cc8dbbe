/**
 * Write Arbiter plugins in JavaScript or TypeScript.
 *
 * A plugin is one of three kinds. Subclass `Verifier`, `Router` or `Decomposer`,
 * describe it in a static `info()`, build it from its settings in the constructor, and
 * `export default` the class from the module named as `entry` in `arbiter.toml`;
 * `arbiter plugin build` bundles the project and turns it into a sandboxed WebAssembly
 * component (componentize-js), with no binding code in the plugin.
 *
 * The concepts and names are the Rust SDK's (`arbiter-sdk` crate): the same records, the
 * same three kinds, `Config`, `Verdict.accept/reject/abstain`, `log`, and the `model` /
 * `stats` capabilities.
 */
export { Config } from './config.js';
export { Decomposer, Router, Verifier } from './plugin.js';
export { exportDecomposer, exportRouter, exportVerifier } from './export.js';
export { bindHost } from './host.js';
export { Candidate, Failed, InvalidConfig, InvalidInput, Judged, Message, PluginError, PluginInfo, Task, Verdict, } from './types.js';
export * as log from './log.js';
export * as model from './model.js';
export { ModelError } from './model.js';
export * as stats from './stats.js';
/** The SDK version; plugins built with it target contract `arbiter:plugin@0.2.0`. */
export const VERSION = '0.2.0';
export const CONTRACT_VERSION = '0.2.0';
