import type * as W from 'arbiter:plugin/types@0.2.0';
import type * as R from 'arbiter:plugin/routing@0.2.0';
import type * as D from 'arbiter:plugin/decomposition@0.2.0';
/** A function the request lets the model call; `parameters` is its JSON Schema as text. */
export type Tool = W.Tool;
/** A call of a tool as the model made it; `arguments` is JSON text, possibly invalid. */
export type ToolCall = W.ToolCall;
/** One generated token, its log-probability and the likeliest alternatives (`top`). */
export type TokenLogprob = W.TokenLogprob;
/** One chat message of a task; `toolCalls` and `toolCallId` as in the OpenAI chat API. */
export type Message = W.Message;
export type Decision = W.Decision;
export type Check = W.Check;
export type ConfigKey = W.ConfigKey;
export type PluginKind = W.PluginKind;
export type RouteStep = R.RouteStep;
export type RouteDecision = R.RouteDecision;
export type Subtask = D.Subtask;
export type Plan = D.Plan;
export type Subresult = D.Subresult;
/** Observed outcomes of a model. `attempts` is a number here (a `u64` in the WIT). */
export interface ModelStats {
    attempts: number;
    successRate: number;
    latencyP50Ms: number;
    latencyP95Ms: number;
}
/** A model the host can run, with its prices (USD per million tokens) and statistics. */
export interface ModelOption {
    name: string;
    inputPrice: number;
    outputPrice: number;
    stats?: ModelStats;
}
/** Result of the cross-candidate step: one score per judged candidate, same order. */
export interface Selection {
    scores: number[];
    reason: string;
}
/** A message as plugin code may write it: the tool fields are optional. */
export interface MessageInit {
    role: string;
    content: string;
    toolCalls?: ToolCall[];
    toolCallId?: string;
}
/** A complete message from one written with optional tool fields (no copy if complete). */
declare function fullMessage(m: MessageInit): Message;
/** Constructors of messages, as the Rust SDK's `Message::new` and `Message::user`. */
export declare const Message: {
    /** A text message (no tool calls). */
    "new"(role: string, content: string): Message;
    /** A user message. */
    user(content: string): Message;
    /** A complete message from one whose tool fields may be missing. */
    from: typeof fullMessage;
};
/** A task as plugin code may write it (unit tests): `tags`, `metadata`, `tools` and the
 * messages' tool fields are optional. */
export interface TaskInit {
    id: string;
    messages: MessageInit[];
    tags?: string[];
    metadata?: Array<[string, string]>;
    tools?: Tool[];
}
/** The request a model is asked to answer, with the Rust SDK's accessors. */
export declare class Task implements W.Task {
    id: string;
    messages: Message[];
    tags: string[];
    metadata: Array<[string, string]>;
    /** The functions the request lets the model call; empty when it offers none. */
    tools: Tool[];
    constructor(task: TaskInit);
    /** A task of one user message (handy in unit tests). */
    static fromPrompt(id: string, prompt: string): Task;
    /** The content of the last user message: the question in single-turn tasks. */
    prompt(): string;
    /** A metadata value by key. */
    meta(key: string): string | undefined;
    hasTag(tag: string): boolean;
    /** A tool the request offers, by name. */
    tool(name: string): Tool | undefined;
}
/** A candidate as plugin code may write it (unit tests): `text`, `toolCalls` and
 * `logprobs` are optional. */
export interface CandidateInit {
    index: number;
    model: string;
    text?: string;
    toolCalls?: ToolCall[];
    logprobs?: TokenLogprob[];
}
/** One answer produced by a model for a task. */
export declare class Candidate implements W.Candidate {
    /** Position of this candidate among the task's candidates (stable, 0-based). */
    index: number;
    model: string;
    /** Empty when the model only called tools. */
    text: string;
    /** The tools the model called instead of (or besides) answering in text. */
    toolCalls: ToolCall[];
    /** Per-token log-probabilities of `text`, when the request asked for `logprobs` and
     * the upstream sent them; empty otherwise. */
    logprobs: TokenLogprob[];
    constructor(candidate: CandidateInit);
    /** Log-probability of the whole text (the sum over its tokens), when the request asked
     * for `logprobs`; `undefined` otherwise. */
    totalLogprob(): number | undefined;
}
/** A verifier's judgement of one candidate. Scores are clamped into [0, 1]. */
export declare class Verdict implements W.Verdict {
    score: number;
    decision: Decision;
    reason: string;
    checks: Check[];
    details?: string;
    constructor(decision: Decision, score: number, reason: string);
    static accept(score: number, reason: string): Verdict;
    static reject(score: number, reason: string): Verdict;
    /** The verifier cannot judge this candidate (score 0.5: no information). */
    static abstain(reason: string): Verdict;
    /** Adds a named check (a test, a rule) to the verdict. */
    withCheck(name: string, passed: boolean, message?: string): this;
    withChecks(checks: Iterable<Check>): this;
    /** Attaches JSON the host stores with the trace: text as is, other values serialized. */
    withDetails(json: unknown): this;
}
/** A candidate with the verdict it got (`undefined` when its verification failed). */
export declare class Judged implements W.Judged {
    candidate: Candidate;
    verdict?: Verdict;
    constructor(candidate: CandidateInit, verdict?: W.Verdict);
    /** The verdict's score, or 0 when verification of this candidate failed. */
    score(): number;
}
/** Options of `PluginInfo.verifier/router/decomposer`. */
export interface InfoOptions {
    /** Calls keep no state between them, so the host may reuse warm instances. */
    stateless?: boolean;
}
/** What `arbiter plugin inspect` shows and the host checks at load. */
export declare class PluginInfo implements W.PluginInfo {
    name: string;
    version: string;
    kind: PluginKind;
    description: string;
    stateless: boolean;
    configKeys: ConfigKey[];
    constructor(kind: PluginKind, name: string, version: string, description: string, options?: InfoOptions);
    static verifier(name: string, version: string, description: string, options?: InfoOptions): PluginInfo;
    static router(name: string, version: string, description: string, options?: InfoOptions): PluginInfo;
    static decomposer(name: string, version: string, description: string, options?: InfoOptions): PluginInfo;
    /** Documents a setting (shown by `arbiter plugin inspect`). */
    configKey(name: string, description: string, defaultValue?: string): this;
}
/**
 * The contract's `plugin-error`. Throw one of its cases from plugin code; any other
 * exception is reported as `failed` with its name and message.
 */
export declare abstract class PluginError extends Error {
    abstract readonly tag: W.PluginError['tag'];
}
/** The settings are unusable; from `new`/the constructor it refuses the pipeline. */
export declare class InvalidConfig extends PluginError {
    readonly tag: "invalid-config";
    readonly name = "InvalidConfig";
}
/** This input cannot be handled (e.g. a task without the metadata the plugin needs). */
export declare class InvalidInput extends PluginError {
    readonly tag: "invalid-input";
    readonly name = "InvalidInput";
}
/** Any other failure inside the plugin. */
export declare class Failed extends PluginError {
    readonly tag: "failed";
    readonly name = "Failed";
}
export {};
