// The three plugin kinds, mirroring the Rust SDK's traits: a static `info()`,
// construction from the pipeline's settings (`new(config)`, by default the
// constructor), and the kind's calls. Subclass one, `export default` the class, and name
// the module as `entry` in `arbiter.toml`; the SDK exports it (no binding code needed).
//
// The SDK keeps the object built from a configuration while the configuration stays the
// same and the host reuses the instance, so expensive preparation (compiling a schema or
// a regular expression) belongs in the constructor. Preparation that does not depend on
// the settings belongs at module top level: it runs once, when the component is built,
// and is part of the component's snapshot.
/** A verifier judges one candidate at a time, and optionally rescores all candidates of
 * a task together (`select`). */
export class Verifier {
    /** Builds the verifier from its settings; throw `InvalidConfig` for bad ones. */
    constructor(_config) { }
    /** Metadata shown by `arbiter plugin inspect` and checked by the host at load. */
    static info() {
        throw new Error(`${this.name} must define static info()`);
    }
    /** Builds the plugin from its settings; override for custom construction. */
    static new(config) {
        return new this(config);
    }
    /** Extra checks of the settings that run only when the host loads a pipeline
     * (`check-config`), after construction succeeded: for checks too expensive to repeat
     * in every fresh instance (validating a schema against its meta-schema). Throw
     * `InvalidConfig` to refuse the settings. */
    static check(_config) { }
    /** Cross-candidate step. The default keeps each candidate's own verdict score (0 for
     * candidates whose verification failed). */
    select(_task, candidates) {
        return { scores: candidates.map((j) => j.score()), reason: 'individual verdict scores' };
    }
}
/** A router decides which models to try for a task, in what order, with how many
 * samples. */
export class Router {
    constructor(_config) { }
    static info() {
        throw new Error(`${this.name} must define static info()`);
    }
    static new(config) {
        return new this(config);
    }
    /** Extra checks of the settings that run only when the host loads a pipeline
     * (`check-config`), after construction succeeded: for checks too expensive to repeat
     * in every fresh instance (validating a schema against its meta-schema). Throw
     * `InvalidConfig` to refuse the settings. */
    static check(_config) { }
}
/** A decomposer splits a task into a DAG of sub-tasks and composes their answers. */
export class Decomposer {
    constructor(_config) { }
    static info() {
        throw new Error(`${this.name} must define static info()`);
    }
    static new(config) {
        return new this(config);
    }
    /** Extra checks of the settings that run only when the host loads a pipeline
     * (`check-config`), after construction succeeded: for checks too expensive to repeat
     * in every fresh instance (validating a schema against its meta-schema). Throw
     * `InvalidConfig` to refuse the settings. */
    static check(_config) { }
}
