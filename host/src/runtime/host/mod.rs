//! Host implementations of the contract's imports, one file per WIT interface.
//!
//! `log` is linked for every plugin; `model` and `stats` only into linkers for plugins
//! holding the matching grant, so an ungranted import cannot even be resolved.

mod log;
mod model;
mod stats;

pub use model::ModelAccess;
pub use stats::StatsSource;

/// The `types` interface has no functions; linking it only needs the marker impl.
impl super::bindings::arbiter::plugin::types::Host for super::state::CallState {}
