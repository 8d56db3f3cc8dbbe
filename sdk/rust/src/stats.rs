//! Capability `stats`: per-model outcome statistics recorded by the host.
//!
//! Using this module makes the plugin import `arbiter:plugin/stats`; the host loads such
//! a plugin only where the operator granted the `stats` capability.

use crate::types::ModelStats;

/// Observed outcomes of `model` (for tasks tagged `tag` when given), from this tenant's
/// requests only. `attempts` counts the attempts whose outcome is known (accepted or
/// rejected by a verifier, failed, or judged by feedback): the success rate is over
/// those, so a model whose answers nobody judged shows 0 attempts. Latencies cover the
/// recent timed attempts, judged or not.
pub fn query(model: &str, tag: Option<&str>) -> Option<ModelStats> {
    crate::bindings::arbiter::plugin::stats::query(model, tag)
}
