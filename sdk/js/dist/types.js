/// <reference path="../wit-types/index.d.ts" />
// The contract's records (generated from the WIT into `wit-types/`), plus the helpers
// the Rust SDK has on them: `Verdict.accept/reject/abstain`, `PluginInfo.verifier/...`,
// `Task.prompt/meta/hasTag`, `Judged.score`, and the `PluginError` cases.
/** The request a model is asked to answer, with the Rust SDK's accessors. */
export class Task {
    id;
    messages;
    tags;
    metadata;
    constructor(task) {
        this.id = task.id;
        this.messages = task.messages;
        this.tags = task.tags;
        this.metadata = task.metadata;
    }
    /** A task of one user message (handy in unit tests). */
    static fromPrompt(id, prompt) {
        return new Task({ id, messages: [{ role: 'user', content: prompt }], tags: [], metadata: [] });
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
        this.candidate = candidate;
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
