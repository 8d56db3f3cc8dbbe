use crate::runtime::bindings::arbiter::plugin::stats::Host;
use crate::runtime::bindings::arbiter::plugin::types::ModelStats as WitStats;
use crate::runtime::state::CallState;
use crate::runtime::types::ModelStats;

/// Serves the `stats` capability: outcome statistics per model (and tag) from the trace
/// store. Must answer quickly (an in-memory aggregate): plugins call it synchronously.
pub trait StatsSource: Send + Sync {
    fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats>;
}

impl Host for CallState {
    fn query(&mut self, model: String, tag: Option<String>) -> Option<WitStats> {
        let source = self.ctx.stats.as_ref()?;
        source.query(&model, tag.as_deref()).map(|s| WitStats {
            attempts: s.attempts,
            success_rate: s.success_rate,
            latency_p50_ms: s.latency_p50_ms,
            latency_p95_ms: s.latency_p95_ms,
        })
    }
}
