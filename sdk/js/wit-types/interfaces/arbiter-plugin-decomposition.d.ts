// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/decomposition@0.2.0' {
  export function info(): PluginInfo;
  export function checkConfig(config: Config): void;
  export function decompose(config: Config, task: Task): Plan;
  export function compose(config: Config, task: Task, results: Array<Subresult>): string;
  export type Config = import('arbiter:plugin/types@0.2.0').Config;
  export type Task = import('arbiter:plugin/types@0.2.0').Task;
  export type PluginInfo = import('arbiter:plugin/types@0.2.0').PluginInfo;
  export type PluginError = import('arbiter:plugin/types@0.2.0').PluginError;
  export interface Subtask {
    /**
     * Unique within the plan.
     */
    id: string,
    /**
     * The sub-task's prompt; `{{id}}` is replaced by the answer of dependency `id`.
     */
    prompt: string,
    dependsOn: Array<string>,
    /**
     * Optional hint naming the pipeline or model to use for this step.
     */
    route?: string,
    /**
     * Optional hint naming the verifier to use for this step.
     */
    verify?: string,
  }
  /**
   * An empty plan means "do not decompose": the host answers the task directly.
   */
  export interface Plan {
    subtasks: Array<Subtask>,
    reason: string,
  }
  export interface Subresult {
    id: string,
    answer: string,
    model: string,
    /**
     * Best verifier score of the accepted answer, when it was verified.
     */
    score?: number,
  }
}
