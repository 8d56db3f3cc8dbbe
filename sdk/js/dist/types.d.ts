import type * as W from 'arbiter:plugin/types@0.1.0';
import type * as R from 'arbiter:plugin/routing@0.1.0';
import type * as D from 'arbiter:plugin/decomposition@0.1.0';
export type Message = W.Message;
export type Candidate = W.Candidate;
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
/** The request a model is asked to answer, with the Rust SDK's accessors. */
export declare class Task implements W.Task {
    id: string;
    messages: Message[];
    tags: string[];
    metadata: Array<[string, string]>;
    constructor(task: W.Task);
    /** A task of one user message (handy in unit tests). */
    static fromPrompt(id: string, prompt: string): Task;
    /** The content of the last user message: the question in single-turn tasks. */
    prompt(): string;
    /** A metadata value by key. */
    meta(key: string): string | undefined;
    hasTag(tag: string): boolean;
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
    constructor(candidate: Candidate, verdict?: W.Verdict);
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
