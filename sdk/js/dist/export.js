// Export glue between a plugin class and the bindings componentize-js generates. The
// entry module `arbiter plugin build` writes calls one of these and exports the result
// as the kind's interface (`verification`, `routing`, `decomposition`).
//
// The entry module runs when componentize-js pre-initialises the engine, so the plugin's
// module, this SDK and the converted `info()` are in the component's snapshot: a call
// pays for none of it. Here the records are converted to and from the bindings' ones,
// the plugin object is cached per configuration (as the Rust SDK does), outputs are
// checked (a malformed record becomes a `failed` error instead of a trap in the
// bindings), and exceptions become the contract's `plugin-error`.
import { Config } from './config.js';
import * as log from './log.js';
import { Decomposer, Router, Verifier } from './plugin.js';
import { Candidate, Failed, Judged, PluginError, Task, Verdict } from './types.js';
/** Longest stack trace written to the call's log (the host's log budget is small). */
const STACK_CHARS = 2000;
/** The plugin built from the last configuration seen. A fresh instance per call starts
 * empty; a warm (reused) instance skips construction while the settings match. */
let cached;
function samePairs(a, b) {
    if (a.length !== b.length)
        return false;
    for (let i = 0; i < a.length; i++) {
        const x = a[i];
        const y = b[i];
        if (x === undefined || y === undefined || x[0] !== y[0] || x[1] !== y[1])
            return false;
    }
    return true;
}
function plugin(cls, pairs) {
    if (cached !== undefined && cached.cls === cls && samePairs(cached.pairs, pairs)) {
        return cached.plugin;
    }
    const built = cls.new(new Config(pairs));
    // The bindings hand over fresh arrays on every call: keeping them needs no copy.
    cached = { cls, pairs, plugin: built };
    return built;
}
/**
 * Builds the plugin for the empty configuration while the component is pre-initialised,
 * so the object is in the snapshot and a fresh instance called without settings skips
 * construction. A constructor that needs settings (or the host) throws here: nothing is
 * kept, and calls construct as usual.
 */
function prebuild(cls) {
    try {
        plugin(cls, []);
    }
    catch {
        cached = undefined;
    }
}
/** `check-config`: construct (cached like every call), then the class's own checks. */
function checkConfig(cls, pairs) {
    plugin(cls, pairs);
    cls.check?.(new Config(pairs));
    return undefined;
}
const CASES = ['invalid-config', 'invalid-input', 'failed'];
function pluginError(e, call) {
    if (e instanceof PluginError && CASES.includes(e.tag)) {
        return { tag: e.tag, val: e.message };
    }
    const name = e instanceof Error ? e.name : typeof e;
    const message = e instanceof Error ? e.message : String(e);
    const stack = e instanceof Error && typeof e.stack === 'string' ? e.stack : '';
    try {
        log.error(`uncaught exception in ${call}`, {
            stack: stack.length > STACK_CHARS ? `${stack.slice(0, STACK_CHARS)}...` : stack,
        });
    }
    catch {
        // The log budget may be spent already; the error itself still goes back.
    }
    return { tag: 'failed', val: `${name}: ${message}` };
}
/** Runs plugin code, turning every failure into the contract's `plugin-error`. */
function guard(call, f) {
    try {
        return { tag: 'ok', val: f() };
    }
    catch (e) {
        return { tag: 'err', val: pluginError(e, call) };
    }
}
function describe(value) {
    if (value === null)
        return 'null';
    if (value === undefined)
        return 'undefined';
    if (typeof value === 'function')
        return `function ${value.name || '(anonymous)'}`;
    if (Array.isArray(value))
        return 'an array';
    if (typeof value === 'object' && typeof value.then === 'function') {
        return 'a Promise (plugin methods are synchronous)';
    }
    return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
function record(value, call, what) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new Failed(`${call}() returned ${describe(value)}, expected ${what}`);
    }
    if (typeof value.then === 'function') {
        throw new Failed(`${call}() returned ${describe(value)}`);
    }
    return value;
}
function text(value, call, field) {
    if (typeof value !== 'string') {
        throw new Failed(`${call}(): \`${field}\` is ${describe(value)}, expected a string`);
    }
    return value;
}
function optionalText(value, call, field) {
    return value === undefined || value === null ? undefined : text(value, call, field);
}
function num(value, call, field) {
    if (typeof value !== 'number') {
        throw new Failed(`${call}(): \`${field}\` is ${describe(value)}, expected a number`);
    }
    return value;
}
// ------------------------------------------------------------------ records in
function taskIn(t) {
    return new Task(t);
}
function optionIn(o) {
    const out = { name: o.name, inputPrice: o.inputPrice, outputPrice: o.outputPrice };
    if (o.stats !== undefined && o.stats !== null) {
        out.stats = {
            attempts: Number(o.stats.attempts),
            successRate: o.stats.successRate,
            latencyP50Ms: o.stats.latencyP50Ms,
            latencyP95Ms: o.stats.latencyP95Ms,
        };
    }
    return out;
}
// ----------------------------------------------------------------- records out
const DECISIONS = ['accept', 'reject', 'abstain'];
const KINDS = ['verifier', 'router', 'decomposer'];
function infoOut(cls, kind) {
    const i = record(cls.info(), `${cls.name}.info`, 'a PluginInfo');
    const call = `${cls.name}.info`;
    if (!KINDS.includes(i.kind) || i.kind !== kind) {
        throw new Error(`${call}() says the plugin is a ${String(i.kind)}, but arbiter.toml builds a ${kind}`);
    }
    const keys = i.configKeys ?? [];
    if (!Array.isArray(keys))
        throw new Failed(`${call}(): \`configKeys\` is not an array`);
    return {
        name: text(i.name, call, 'name'),
        version: text(i.version, call, 'version'),
        kind,
        description: text(i.description, call, 'description'),
        stateless: i.stateless === true,
        configKeys: keys.map((k) => {
            const key = record(k, call, 'a config key');
            const out = {
                name: text(key.name, call, 'configKeys[].name'),
                description: text(key.description, call, 'configKeys[].description'),
            };
            const d = optionalText(key.default, call, 'configKeys[].default');
            if (d !== undefined)
                out.default = d;
            return out;
        }),
    };
}
function verdictOut(value) {
    // The common case, checked in a few operations (each costs ~1,000 instructions in the
    // interpreter): a `Verdict` built with the SDK's constructors and left alone. The
    // bindings read only the record's fields.
    if (value instanceof Verdict &&
        typeof value.score === 'number' &&
        DECISIONS.includes(value.decision) &&
        typeof value.reason === 'string' &&
        value.checks.length === 0 &&
        value.details === undefined) {
        return value;
    }
    const v = record(value, 'verify', 'a Verdict');
    if (!DECISIONS.includes(v.decision)) {
        throw new Failed(`verify(): decision ${JSON.stringify(v.decision)} is not accept, reject or abstain`);
    }
    const checks = v.checks ?? [];
    if (!Array.isArray(checks))
        throw new Failed('verify(): `checks` is not an array');
    const out = {
        score: num(v.score, 'verify', 'score'),
        decision: v.decision,
        reason: text(v.reason ?? '', 'verify', 'reason'),
        checks: checks.map((c) => {
            const check = record(c, 'verify', 'a check');
            const o = {
                name: text(check.name, 'verify', 'checks[].name'),
                passed: check.passed === true,
            };
            const m = optionalText(check.message, 'verify', 'checks[].message');
            if (m !== undefined)
                o.message = m;
            return o;
        }),
    };
    const details = optionalText(v.details, 'verify', 'details');
    if (details !== undefined)
        out.details = details;
    return out;
}
function selectionOut(value) {
    const s = record(value, 'select', 'a Selection');
    const scores = s.scores;
    if (!Array.isArray(scores) && !(scores instanceof Float64Array)) {
        throw new Failed('select(): `scores` is not an array of numbers');
    }
    const out = new Float64Array(scores.length);
    for (let i = 0; i < scores.length; i++)
        out[i] = num(scores[i], 'select', `scores[${i}]`);
    return { scores: out, reason: text(s.reason ?? '', 'select', 'reason') };
}
function u32(value, call, field) {
    const n = num(value, call, field);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
        throw new Failed(`${call}(): \`${field}\` = ${n} is not a whole number in [0, 2^32)`);
    }
    return n;
}
function decisionOut(value) {
    const d = record(value, 'route', 'a RouteDecision');
    if (!Array.isArray(d.steps))
        throw new Failed('route(): `steps` is not an array');
    return {
        steps: d.steps.map((s) => {
            const step = record(s, 'route', 'a RouteStep');
            const out = {
                target: text(step.target, 'route', 'steps[].target'),
                samples: u32(step.samples, 'route', 'steps[].samples'),
            };
            if (step.minScore !== undefined && step.minScore !== null) {
                out.minScore = num(step.minScore, 'route', 'steps[].minScore');
            }
            return out;
        }),
        reason: text(d.reason ?? '', 'route', 'reason'),
    };
}
function planOut(value) {
    const p = record(value, 'decompose', 'a Plan');
    if (!Array.isArray(p.subtasks))
        throw new Failed('decompose(): `subtasks` is not an array');
    return {
        subtasks: p.subtasks.map((s) => {
            const sub = record(s, 'decompose', 'a Subtask');
            const deps = sub.dependsOn ?? [];
            if (!Array.isArray(deps))
                throw new Failed('decompose(): `dependsOn` is not an array');
            const out = {
                id: text(sub.id, 'decompose', 'subtasks[].id'),
                prompt: text(sub.prompt, 'decompose', 'subtasks[].prompt'),
                dependsOn: deps.map((d) => text(d, 'decompose', 'subtasks[].dependsOn[]')),
            };
            const route = optionalText(sub.route, 'decompose', 'subtasks[].route');
            if (route !== undefined)
                out.route = route;
            const verify = optionalText(sub.verify, 'decompose', 'subtasks[].verify');
            if (verify !== undefined)
                out.verify = verify;
            return out;
        }),
        reason: text(p.reason ?? '', 'decompose', 'reason'),
    };
}
// --------------------------------------------------------------------- exports
function checkClass(cls, base, kind, source) {
    if (typeof cls !== 'function' || !(cls.prototype instanceof base)) {
        throw new TypeError(`${source} must be a class extending ${base.name} from '@arbiter/sdk' (arbiter.toml builds a ${kind}), not ${describe(cls)}`);
    }
}
/** The `verification` interface of a `Verifier` subclass. */
export function exportVerifier(cls, source = 'the plugin') {
    checkClass(cls, Verifier, 'verifier', source);
    // `info()` is static metadata: converted (and checked) once, into the snapshot.
    const info = infoOut(cls, 'verifier');
    prebuild(cls);
    return {
        info: () => info,
        checkConfig: (config) => guard('check-config', () => checkConfig(cls, config)),
        verify: (config, task, candidate) => guard('verify', () => verdictOut(plugin(cls, config).verify(taskIn(task), new Candidate(candidate)))),
        select: (config, task, candidates) => guard('select', () => selectionOut(plugin(cls, config).select(taskIn(task), candidates.map((j) => new Judged(j.candidate, j.verdict))))),
    };
}
/** The `routing` interface of a `Router` subclass. */
export function exportRouter(cls, source = 'the plugin') {
    checkClass(cls, Router, 'router', source);
    const info = infoOut(cls, 'router');
    prebuild(cls);
    return {
        info: () => info,
        checkConfig: (config) => guard('check-config', () => checkConfig(cls, config)),
        route: (config, task, options) => guard('route', () => decisionOut(plugin(cls, config).route(taskIn(task), options.map(optionIn)))),
    };
}
/** The `decomposition` interface of a `Decomposer` subclass. */
export function exportDecomposer(cls, source = 'the plugin') {
    checkClass(cls, Decomposer, 'decomposer', source);
    const info = infoOut(cls, 'decomposer');
    prebuild(cls);
    return {
        info: () => info,
        checkConfig: (config) => guard('check-config', () => checkConfig(cls, config)),
        decompose: (config, task) => guard('decompose', () => planOut(plugin(cls, config).decompose(taskIn(task)))),
        compose: (config, task, results) => guard('compose', () => {
            const answer = plugin(cls, config).compose(taskIn(task), results);
            return text(answer, 'compose', 'the composed answer');
        }),
    };
}
