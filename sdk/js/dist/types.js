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
/** A complete message from one written with optional tool fields (no copy if complete). */
function fullMessage(m) {
    if (m.toolCalls !== undefined)
        return m;
    const out = { role: m.role, content: m.content, toolCalls: [] };
    if (m.toolCallId !== undefined)
        out.toolCallId = m.toolCallId;
    return out;
}
/** Constructors of messages, as the Rust SDK's `Message::new` and `Message::user`. */
export const Message = {
    /** A text message (no tool calls). */
    new(role, content) {
        return { role, content, toolCalls: [] };
    },
    /** A user message. */
    user(content) {
        return { role: 'user', content, toolCalls: [] };
    },
    /** A complete message from one whose tool fields may be missing. */
    from: fullMessage,
};
/** The request a model is asked to answer, with the Rust SDK's accessors. */
export class Task {
    id;
    messages;
    tags;
    metadata;
    /** The functions the request lets the model call; empty when it offers none. */
    tools;
    constructor(task) {
        this.id = task.id;
        const messages = task.messages;
        let complete = true;
        for (let i = 0; i < messages.length; i++) {
            if (messages[i].toolCalls === undefined)
                complete = false;
        }
        this.messages = complete ? messages : messages.map(fullMessage);
        this.tags = task.tags ?? [];
        this.metadata = task.metadata ?? [];
        this.tools = task.tools ?? [];
    }
    /** A task of one user message (handy in unit tests). */
    static fromPrompt(id, prompt) {
        return new Task({ id, messages: [Message.user(prompt)] });
    }
    /** The content of the last user message: the question in single-turn tasks. */
    prompt() {
        for (let i = this.messages.length - 1; i >= 0; i--) {
            const m = this.messages[i];
            if (m !== undefined && m.role === 'user')
                return m.content;
        }
        return this.messages[this.messages.length - 1]?.content ?? '';
    }
    /** A metadata value by key. */
    meta(key) {
        for (let i = 0; i < this.metadata.length; i++) {
            const pair = this.metadata[i];
            if (pair[0] === key)
                return pair[1];
        }
        return undefined;
    }
    hasTag(tag) {
        return this.tags.includes(tag);
    }
    /** A tool the request offers, by name. */
    tool(name) {
        for (let i = 0; i < this.tools.length; i++) {
            const t = this.tools[i];
            if (t.name === name)
                return t;
        }
        return undefined;
    }
}
/** One answer produced by a model for a task. */
export class Candidate {
    /** Position of this candidate among the task's candidates (stable, 0-based). */
    index;
    model;
    /** Empty when the model only called tools. */
    text;
    /** The tools the model called instead of (or besides) answering in text. */
    toolCalls;
    /** Per-token log-probabilities of `text`, when the request asked for `logprobs` and
     * the upstream sent them; empty otherwise. */
    logprobs;
    constructor(candidate) {
        this.index = candidate.index;
        this.model = candidate.model;
        this.text = candidate.text ?? '';
        this.toolCalls = candidate.toolCalls ?? [];
        this.logprobs = candidate.logprobs ?? [];
    }
    /** Log-probability of the whole text (the sum over its tokens), when the request asked
     * for `logprobs`; `undefined` otherwise. */
    totalLogprob() {
        if (this.logprobs.length === 0)
            return undefined;
        let sum = 0;
        for (let i = 0; i < this.logprobs.length; i++)
            sum += this.logprobs[i].logprob;
        return sum;
    }
}
/** A verifier's judgement of one candidate. Scores are clamped into [0, 1]. */
export class Verdict {
    score;
    decision;
    reason;
    checks = [];
    details;
    constructor(decision, score, reason) {
        this.decision = decision;
        this.score = Number.isNaN(score) ? 0 : Math.min(1, Math.max(0, score));
        this.reason = reason;
    }
    static accept(score, reason) {
        return new Verdict('accept', score, reason);
    }
    static reject(score, reason) {
        return new Verdict('reject', score, reason);
    }
    /** The verifier cannot judge this candidate (score 0.5: no information). */
    static abstain(reason) {
        return new Verdict('abstain', 0.5, reason);
    }
    /** Adds a named check (a test, a rule) to the verdict. */
    withCheck(name, passed, message) {
        this.checks.push(message === undefined ? { name, passed } : { name, passed, message });
        return this;
    }
    withChecks(checks) {
        for (const c of checks)
            this.checks.push(c);
        return this;
    }
    /** Attaches JSON the host stores with the trace: text as is, other values serialized. */
    withDetails(json) {
        this.details = typeof json === 'string' ? json : JSON.stringify(json);
        return this;
    }
}
/** A candidate with the verdict it got (`undefined` when its verification failed). */
export class Judged {
    candidate;
    verdict;
    constructor(candidate, verdict) {
        this.candidate = candidate instanceof Candidate ? candidate : new Candidate(candidate);
        if (verdict !== undefined && verdict !== null) {
            const v = new Verdict(verdict.decision, verdict.score, verdict.reason);
            v.checks = verdict.checks;
            if (verdict.details !== undefined)
                v.details = verdict.details;
            this.verdict = v;
        }
    }
    /** The verdict's score, or 0 when verification of this candidate failed. */
    score() {
        return this.verdict?.score ?? 0;
    }
}
/** What `arbiter plugin inspect` shows and the host checks at load. */
export class PluginInfo {
    name;
    version;
    kind;
    description;
    stateless;
    configKeys = [];
    constructor(kind, name, version, description, options = {}) {
        this.kind = kind;
        this.name = name;
        this.version = version;
        this.description = description;
        this.stateless = options.stateless ?? false;
    }
    static verifier(name, version, description, options) {
        return new PluginInfo('verifier', name, version, description, options);
    }
    static router(name, version, description, options) {
        return new PluginInfo('router', name, version, description, options);
    }
    static decomposer(name, version, description, options) {
        return new PluginInfo('decomposer', name, version, description, options);
    }
    /** Documents a setting (shown by `arbiter plugin inspect`). */
    configKey(name, description, defaultValue) {
        this.configKeys.push(defaultValue === undefined ? { name, description } : { name, description, default: defaultValue });
        return this;
    }
}
/**
 * The contract's `plugin-error`. Throw one of its cases from plugin code; any other
 * exception is reported as `failed` with its name and message.
 */
export class PluginError extends Error {
}
/** The settings are unusable; from `new`/the constructor it refuses the pipeline. */
export class InvalidConfig extends PluginError {
    tag = 'invalid-config';
    name = 'InvalidConfig';
}
/** This input cannot be handled (e.g. a task without the metadata the plugin needs). */
export class InvalidInput extends PluginError {
    tag = 'invalid-input';
    name = 'InvalidInput';
}
/** Any other failure inside the plugin. */
export class Failed extends PluginError {
    tag = 'failed';
    name = 'Failed';
}
