/// <reference path="../wit-types/index.d.ts" />
// The contract's records (generated from the WIT into `wit-types/`), plus the helpers
// the Rust SDK has on them: `Verdict.accept/reject/abstain`, `PluginInfo.verifier/...`,
// `Task.prompt/meta/hasTag/tool`, `Message.new/user`, `Candidate.totalLogprob`,
// `Judged.score`, and the `PluginError` cases.
//
// The records the host hands over always carry every field. The `*Init` shapes leave out
// what contract 0.2.0 added (tools, tool calls, logprobs), so code written against 0.1.0
// (`{ role, content }` messages, `{ index, model, text }` candidates) still compiles and
// gets empty lists.

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
function fullMessage(m: MessageInit): Message {
  if (m.toolCalls !== undefined) return m as Message;
  const out: Message = { role: m.role, content: m.content, toolCalls: [] };
  if (m.toolCallId !== undefined) out.toolCallId = m.toolCallId;
  return out;
}

/** Constructors of messages, as the Rust SDK's `Message::new` and `Message::user`. */
export const Message = {
  /** A text message (no tool calls). */
  new(role: string, content: string): Message {
    return { role, content, toolCalls: [] };
  },
  /** A user message. */
  user(content: string): Message {
    return { role: 'user', content, toolCalls: [] };
  },
  /** A complete message from one whose tool fields may be missing. */
  from: fullMessage,
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
export class Task implements W.Task {
  id: string;
  messages: Message[];
  tags: string[];
  metadata: Array<[string, string]>;
  /** The functions the request lets the model call; empty when it offers none. */
  tools: Tool[];

  constructor(task: TaskInit) {
    this.id = task.id;
    const messages = task.messages;
    let complete = true;
    for (let i = 0; i < messages.length; i++) {
      if (messages[i]!.toolCalls === undefined) complete = false;
    }
    this.messages = complete ? (messages as Message[]) : messages.map(fullMessage);
    this.tags = task.tags ?? [];
    this.metadata = task.metadata ?? [];
    this.tools = task.tools ?? [];
  }

  /** A task of one user message (handy in unit tests). */
  static fromPrompt(id: string, prompt: string): Task {
    return new Task({ id, messages: [Message.user(prompt)] });
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

  /** A tool the request offers, by name. */
  tool(name: string): Tool | undefined {
    for (let i = 0; i < this.tools.length; i++) {
      const t = this.tools[i]!;
      if (t.name === name) return t;
    }
    return undefined;
  }
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
export class Candidate implements W.Candidate {
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

  constructor(candidate: CandidateInit) {
    this.index = candidate.index;
    this.model = candidate.model;
    this.text = candidate.text ?? '';
    this.toolCalls = candidate.toolCalls ?? [];
    this.logprobs = candidate.logprobs ?? [];
  }

  /** Log-probability of the whole text (the sum over its tokens), when the request asked
   * for `logprobs`; `undefined` otherwise. */
  totalLogprob(): number | undefined {
    if (this.logprobs.length === 0) return undefined;
    let sum = 0;
    for (let i = 0; i < this.logprobs.length; i++) sum += this.logprobs[i]!.logprob;
    return sum;
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

  constructor(candidate: CandidateInit, verdict?: W.Verdict) {
    this.candidate = candidate instanceof Candidate ? candidate : new Candidate(candidate);
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
