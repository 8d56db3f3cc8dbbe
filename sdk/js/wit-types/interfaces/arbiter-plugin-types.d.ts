// Generated from wit/v0.1.0 by sdk/js/scripts/gen-types.mjs; do not edit.
declare module 'arbiter:plugin/types@0.1.0' {
  /**
   * One chat message of a task, as in the OpenAI chat API.
   */
  export interface Message {
    role: string,
    content: string,
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
    text: string,
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
