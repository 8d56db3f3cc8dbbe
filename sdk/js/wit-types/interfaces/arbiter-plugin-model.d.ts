// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
/// <reference path="./arbiter-plugin-types.d.ts" />
declare module 'arbiter:plugin/model@0.2.0' {
  export function complete(request: CompletionRequest): Completion;
  export type Message = import('arbiter:plugin/types@0.2.0').Message;
  export interface CompletionRequest {
    messages: Array<Message>,
    /**
     * A model name the pipeline allows; `none` lets the host choose.
     */
    model?: string,
    maxTokens?: number,
    temperature?: number,
  }
  export interface Completion {
    text: string,
    model: string,
    inputTokens: number,
    outputTokens: number,
  }
  export type ModelError = ModelErrorDenied | ModelErrorOverBudget | ModelErrorFailed;
  /**
   * The model is not allowed for this plugin or pipeline.
   */
  export interface ModelErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * The request's deadline, cost or call budget cannot pay for this call.
   */
  export interface ModelErrorOverBudget {
    tag: 'over-budget',
    val: string,
  }
  /**
   * The provider failed (after the host's retries).
   */
  export interface ModelErrorFailed {
    tag: 'failed',
    val: string,
  }
}
