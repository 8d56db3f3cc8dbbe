//! The orchestration engine: pipelines (a tree of strategies) run per request under a
//! budget, with every attempt traced.

pub mod budget;
mod capabilities;
pub mod catalog;
mod context;
pub mod def;
pub mod embed;
pub mod engine;
mod error;
mod in_flight;
mod model_call;
mod plugin_logs;
mod request;
pub mod spec;
pub mod strategy;
pub mod trace;
pub mod verdict_memo;
mod verify;

pub use budget::{BudgetLimits, OnBudget};
pub use capabilities::OutcomeStats;
pub use catalog::{Catalogs, TenantCatalog};
pub use context::{RequestCtx, Step};
pub use def::PipelineDef;
pub use embed::{EmbedRequest, EmbedResult};
pub use engine::{Engine, ModelEntry, PluginEntry};
pub use error::{panic_message, ExecError};
pub use request::{Answer, DeltaSink, ExecRequest, ExecResult, Streamed};
pub use strategy::{Node, Strategy};
pub use trace::{
    AttemptKind, AttemptOutcome, AttemptRecord, RequestOutcome, RequestTrace, VerdictRecord,
};
