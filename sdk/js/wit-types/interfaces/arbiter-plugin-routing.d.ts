// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/routing@0.2.0' {
  export function info(): PluginInfo;
  export function checkConfig(config: Config): void;
  export function route(config: Config, task: Task, options: Array<ModelOption>): RouteDecision;
  export type Config = import('arbiter:plugin/types@0.2.0').Config;
  export type Task = import('arbiter:plugin/types@0.2.0').Task;
  export type ModelStats = import('arbiter:plugin/types@0.2.0').ModelStats;
  export type PluginInfo = import('arbiter:plugin/types@0.2.0').PluginInfo;
  export type PluginError = import('arbiter:plugin/types@0.2.0').PluginError;
  /**
   * A model (or pipeline branch) the host can run, with what it costs and how it did.
   */
  export interface ModelOption {
    name: string,
    /**
     * USD per million input tokens.
     */
    inputPrice: number,
    /**
     * USD per million output tokens.
     */
    outputPrice: number,
    stats?: ModelStats,
  }
  export interface RouteStep {
    /**
     * A `model-option` name.
     */
    target: string,
    /**
     * Candidates to sample from it (at least 1).
     */
    samples: number,
    /**
     * Escalate to the next step unless the best verified score reaches this; `none`
     * escalates only when no candidate is accepted.
     */
    minScore?: number,
  }
  /**
   * Steps in order: the host runs the first, and escalates down the list.
   */
  export interface RouteDecision {
    steps: Array<RouteStep>,
    reason: string,
  }
}
