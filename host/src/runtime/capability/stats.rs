//! `stats`: per-model outcome statistics from the trace store, so routers learn from
//! what happened before. Granted per plugin.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::Capability;
use crate::runtime::contract;
use crate::runtime::state::CallState;
use crate::runtime::types::ModelStats;

/// As written in `grants`.
pub const NAME: &str = "stats";

pub(super) const CAPABILITY: Capability = Capability {
    name: NAME,
    add_to_linker,
};

fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    contract::v0_1_0::add_stats(linker)?;
    contract::v0_2_0::add_stats(linker)
}

/// Serves the `stats` capability: outcome statistics per model (and tag) from the trace
/// store. Must answer quickly (an in-memory aggregate): plugins call it synchronously.
pub trait StatsSource: Send + Sync {
    fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats>;
}

/// What `stats` sees of a call's store: the caller's source, if any.
pub(crate) struct StatsView<'a>(&'a Option<Arc<dyn StatsSource>>);

pub(crate) struct Stats;

impl HasData for Stats {
    type Data<'a> = StatsView<'a>;
}

pub(crate) fn view(state: &mut CallState) -> StatsView<'_> {
    StatsView(&state.ctx.stats)
}

impl StatsView<'_> {
    /// Nothing recorded and no source to ask look the same to the plugin: `none`.
    pub(crate) fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats> {
        self.0.as_ref()?.query(model, tag)
    }
}
