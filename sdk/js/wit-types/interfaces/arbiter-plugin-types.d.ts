// Generated from wit/v0.2.0 by sdk/js/scripts/gen-types.mjs; do not edit.
declare module 'arbiter:plugin/types@0.2.0' {
  /**
   * A function the request lets the model call (OpenAI `tools`, type `function`).
   */
  export interface Tool {
    name: string,
    /**
     * Empty when the request gave none.
     */
    description: string,
    /**
     * The JSON Schema of the arguments, as JSON text (`{}` when the request gave none).
     */
    parameters: string,
  }
  /**
   * A call of a tool, as the model made it.
   */
  export interface ToolCall {
    /**
     * The id the model gave the call; `tool` messages answer it by this id.
     */
    id: string,
    name: string,
    /**
     * The arguments as JSON text, exactly as the model wrote them: they may not be
     * valid JSON, let alone valid against the tool's schema. Checking is the point.
     */
    arguments: string,
  }
  /**
   * One generated token and its log-probability, with the likeliest alternatives when
   * the request asked for `top_logprobs`.
   */
  export interface TokenLogprob {
    token: string,
    logprob: number,
    top: Array<[string, number]>,
  }
  /**
   * One chat message of a task, as in the OpenAI chat API.
   */
  export interface Message {
    role: string,
    /**
     * Empty for an assistant message that only calls tools.
     */
    content: string,
    /**
     * The tools an assistant message called.
     */
    toolCalls: Array<ToolCall>,
    /**
     * The call a `tool` message answers.
     */
    toolCallId?: string,
  }
  /**
   * Plugin settings given when a pipeline loads the plugin; one compiled plugin serves
   * many pipelines with different settings. Values that need structure are JSON text.
   */
  export type Config = Array<[string, string]>;
  /**
   * The request a model is asked to answer.
   */
  export interface Task {
    /**
     * Stable id of the request (or sub-task) the host is working on.
     */
    id: string,
    messages: Array<Message>,
    /**
     * Attributes and tags the tenant or the pipeline attached (e.g. "math", "code").
     */
    tags: Array<string>,
    /**
     * Tenant-provided metadata, e.g. `reference`, `tests` (JSON array), `entry-point`.
     */
    metadata: Array<[string, string]>,
    /**
     * The functions the request lets the model call; empty when it offers none.
     */
    tools: Array<Tool>,
  }
  /**
   * One answer produced by a model for a task.
   */
  export interface Candidate {
    /**
     * Position of this candidate among the task's candidates (stable, 0-based).
     */
    index: number,
    model: string,
    /**
     * Empty when the model only called tools.
     */
    text: string,
    /**
     * The tools the model called instead of (or besides) answering in text.
     */
    toolCalls: Array<ToolCall>,
    /**
     * Per-token log-probabilities of `text`, when the request asked for `logprobs`
     * and the upstream sent them; empty otherwise. Confidence-based verifiers read
     * these.
     */
    logprobs: Array<TokenLogprob>,
  }
  /**
   * # Variants
   * 
   * ## `"accept"`
   * 
   * ## `"reject"`
   * 
   * ## `"abstain"`
   * 
   * The verifier cannot judge this candidate; the host looks at other signals.
   */
  export type Decision = 'accept' | 'reject' | 'abstain';
  /**
   * One named check a verifier ran, e.g. a unit test or a schema rule.
   */
  export interface Check {
    name: string,
    passed: boolean,
    message?: string,
  }
  export interface Verdict {
    /**
     * Confidence that the candidate is right, in [0, 1]. Out-of-range or NaN is an error.
     */
    score: number,
    decision: Decision,
    /**
     * Short human-readable reason (the host truncates long reasons).
     */
    reason: string,
    checks: Array<Check>,
    /**
     * Optional extra structure as a JSON value, passed through to traces.
     */
    details?: string,
  }
  /**
   * A candidate with the verdict it got; `none` when its own verification failed
   * (trap, deadline, error), so one broken candidate never hides the others.
   */
  export interface Judged {
    candidate: Candidate,
    verdict?: Verdict,
  }
  /**
   * Result of the cross-candidate step: one score per judged candidate, same order.
   */
  export interface Selection {
    scores: Float64Array,
    reason: string,
  }
  /**
   * Observed outcomes of a model, from the host's trace store.
   */
  export interface ModelStats {
    /**
     * Number of recorded attempts these figures are computed from.
     */
    attempts: bigint,
    /**
     * Share of attempts whose answer was accepted or confirmed correct, in [0, 1].
     */
    successRate: number,
    latencyP50Ms: number,
    latencyP95Ms: number,
  }
  /**
   * # Variants
   * 
   * ## `"verifier"`
   * 
   * ## `"router"`
   * 
   * ## `"decomposer"`
   */
  export type PluginKind = 'verifier' | 'router' | 'decomposer';
  /**
   * A setting the plugin understands, for `arbiter plugin inspect` and config checks.
   */
  export interface ConfigKey {
    name: string,
    description: string,
    'default'?: string,
  }
  export interface PluginInfo {
    name: string,
    version: string,
    kind: PluginKind,
    description: string,
    /**
     * True when calls keep no state between them, so the host may reuse a warm
     * instance instead of a fresh one per call.
     */
    stateless: boolean,
    configKeys: Array<ConfigKey>,
  }
  export type PluginError = PluginErrorInvalidConfig | PluginErrorInvalidInput | PluginErrorFailed;
  /**
   * The configuration is unusable; reported at load time by `check-config`.
   */
  export interface PluginErrorInvalidConfig {
    tag: 'invalid-config',
    val: string,
  }
  /**
   * This input cannot be handled (e.g. a task without the metadata the plugin needs).
   */
  export interface PluginErrorInvalidInput {
    tag: 'invalid-input',
    val: string,
  }
  /**
   * Any other failure inside the plugin.
   */
  export interface PluginErrorFailed {
    tag: 'failed',
    val: string,
  }
}
