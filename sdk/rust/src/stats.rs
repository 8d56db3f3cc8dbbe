//! Capability `stats`: per-model outcome statistics recorded by the host.
//!
//! Using this module makes the plugin import `arbiter:plugin/stats`; the host loads such
//! a plugin only where the operator granted the `stats` capability.

use crate::types::ModelStats;

/// Observed outcomes of `model` (for tasks tagged `tag` when given).
pub fn query(model: &str, tag: Option<&str>) -> Option<ModelStats> {
    crate::bindings::arbiter::plugin::stats::query(model, tag)
}
