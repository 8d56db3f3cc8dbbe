// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/verification@0.2.0' {
  export function info(): PluginInfo;
  /**
   * Called once when a pipeline loads the plugin; an error refuses the pipeline.
   */
  export function checkConfig(config: Config): void;
  /**
   * Judge one candidate. Each call runs isolated from the task's other candidates.
   */
  export function verify(config: Config, task: Task, candidate: Candidate): Verdict;
  /**
   * Cross-candidate step (consensus, majority vote, test agreement): rescore all
   * candidates of a task given their individual verdicts. Plugins without one return
   * their verdict scores unchanged (0 for candidates without a verdict).
   */
  export function select(config: Config, task: Task, candidates: Array<Judged>): Selection;
  export type Config = import('arbiter:plugin/types@0.2.0').Config;
  export type Task = import('arbiter:plugin/types@0.2.0').Task;
  export type Candidate = import('arbiter:plugin/types@0.2.0').Candidate;
  export type Verdict = import('arbiter:plugin/types@0.2.0').Verdict;
  export type Judged = import('arbiter:plugin/types@0.2.0').Judged;
  export type Selection = import('arbiter:plugin/types@0.2.0').Selection;
  export type PluginInfo = import('arbiter:plugin/types@0.2.0').PluginInfo;
  export type PluginError = import('arbiter:plugin/types@0.2.0').PluginError;
}
