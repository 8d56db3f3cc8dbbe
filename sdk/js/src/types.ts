/// <reference path="../wit-types/index.d.ts" />
// The contract's records (generated from the WIT into `wit-types/`), plus the helpers
// the Rust SDK has on them: `Verdict.accept/reject/abstain`, `PluginInfo.verifier/...`,
// `Task.prompt/meta/hasTag`, `Judged.score`, and the `PluginError` cases.

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
export class Task implements W.Task {
  id: string;
  messages: Message[];
  tags: string[];
  metadata: Array<[string, string]>;

  constructor(task: W.Task) {
    this.id = task.id;
    this.messages = task.messages;
    this.tags = task.tags;
    this.metadata = task.metadata;
  }

  /** A task of one user message (handy in unit tests). */
  static fromPrompt(id: string, prompt: string): Task {
    return new Task({ id, messages: [{ role: 'user', content: prompt }], tags: [], metadata: [] });
  }

  /** The content of the last user message: the question in single-turn tasks. */
  prompt(): string {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i];
      if (m !== undefined && m.role === 'user') return m.content;
    }
    return this.messages[this.messages.length - 1]?.content ?? '';
  }

  /** A metadata value by key. */
  meta(key: string): string | undefined {
    for (let i = 0; i < this.metadata.length; i++) {
      const pair = this.metadata[i]!;
      if (pair[0] === key) return pair[1];
    }
    return undefined;
  }

  hasTag(tag: string): boolean {
    return this.tags.includes(tag);
  }
}

/** A verifier's judgement of one candidate. Scores are clamped into [0, 1]. */
export class Verdict implements W.Verdict {
  score: number;
  decision: Decision;
  reason: string;
  checks: Check[] = [];
  details?: string;

  constructor(decision: Decision, score: number, reason: string) {
    this.decision = decision;
    this.score = Number.isNaN(score) ? 0 : Math.min(1, Math.max(0, score));
    this.reason = reason;
  }

  static accept(score: number, reason: string): Verdict {
    return new Verdict('accept', score, reason);
  }

  static reject(score: number, reason: string): Verdict {
    return new Verdict('reject', score, reason);
  }

  /** The verifier cannot judge this candidate (score 0.5: no information). */
  static abstain(reason: string): Verdict {
    return new Verdict('abstain', 0.5, reason);
  }

  /** Adds a named check (a test, a rule) to the verdict. */
  withCheck(name: string, passed: boolean, message?: string): this {
    this.checks.push(message === undefined ? { name, passed } : { name, passed, message });
    return this;
  }

  withChecks(checks: Iterable<Check>): this {
    for (const c of checks) this.checks.push(c);
    return this;
  }

  /** Attaches JSON the host stores with the trace: text as is, other values serialized. */
  withDetails(json: unknown): this {
    this.details = typeof json === 'string' ? json : JSON.stringify(json);
    return this;
  }
}

/** A candidate with the verdict it got (`undefined` when its verification failed). */
export class Judged implements W.Judged {
  candidate: Candidate;
  verdict?: Verdict;

  constructor(candidate: Candidate, verdict?: W.Verdict) {
    this.candidate = candidate;
    if (verdict !== undefined && verdict !== null) {
      const v = new Verdict(verdict.decision, verdict.score, verdict.reason);
      v.checks = verdict.checks;
      if (verdict.details !== undefined) v.details = verdict.details;
      this.verdict = v;
    }
  }

  /** The verdict's score, or 0 when verification of this candidate failed. */
  score(): number {
    return this.verdict?.score ?? 0;
  }
}

/** Options of `PluginInfo.verifier/router/decomposer`. */
export interface InfoOptions {
  /** Calls keep no state between them, so the host may reuse warm instances. */
  stateless?: boolean;
}

/** What `arbiter plugin inspect` shows and the host checks at load. */
export class PluginInfo implements W.PluginInfo {
  name: string;
  version: string;
  kind: PluginKind;
  description: string;
  stateless: boolean;
  configKeys: ConfigKey[] = [];

  constructor(
    kind: PluginKind,
    name: string,
    version: string,
    description: string,
    options: InfoOptions = {},
  ) {
    this.kind = kind;
    this.name = name;
    this.version = version;
    this.description = description;
    this.stateless = options.stateless ?? false;
  }

  static verifier(name: string, version: string, description: string, options?: InfoOptions) {
    return new PluginInfo('verifier', name, version, description, options);
  }

  static router(name: string, version: string, description: string, options?: InfoOptions) {
    return new PluginInfo('router', name, version, description, options);
  }

  static decomposer(name: string, version: string, description: string, options?: InfoOptions) {
    return new PluginInfo('decomposer', name, version, description, options);
  }

  /** Documents a setting (shown by `arbiter plugin inspect`). */
  configKey(name: string, description: string, defaultValue?: string): this {
    this.configKeys.push(
      defaultValue === undefined ? { name, description } : { name, description, default: defaultValue },
    );
    return this;
  }
}

/**
 * The contract's `plugin-error`. Throw one of its cases from plugin code; any other
 * exception is reported as `failed` with its name and message.
 */
export abstract class PluginError extends Error {
  abstract readonly tag: W.PluginError['tag'];
}

/** The settings are unusable; from `new`/the constructor it refuses the pipeline. */
export class InvalidConfig extends PluginError {
  readonly tag = 'invalid-config' as const;
  override readonly name = 'InvalidConfig';
}

/** This input cannot be handled (e.g. a task without the metadata the plugin needs). */
export class InvalidInput extends PluginError {
  readonly tag = 'invalid-input' as const;
  override readonly name = 'InvalidInput';
}

/** Any other failure inside the plugin. */
export class Failed extends PluginError {
  readonly tag = 'failed' as const;
  override readonly name = 'Failed';
}
