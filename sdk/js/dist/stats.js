// Capability `stats`: per-model outcome statistics recorded by the host. Needs
// `capabilities = ["stats"]` in `arbiter.toml` (a router); the operator must grant it.
import { host } from './host.js';
/** Observed outcomes of `model` (for tasks tagged `tag` when given). */
export function query(model, tag) {
    if (host.query === undefined) {
        throw new Error('the `stats` capability is not available: add capabilities = ["stats"] to arbiter.toml');
    }
    const s = host.query(model, tag);
    return s === undefined || s === null
        ? undefined
        : {
            attempts: Number(s.attempts),
            successRate: s.successRate,
            latencyP50Ms: s.latencyP50Ms,
            latencyP95Ms: s.latencyP95Ms,
        };
}
