//! The orchestration engine: pipelines (a tree of strategies) run per request under a
//! budget, with every attempt traced.

pub mod budget;
pub mod def;
pub mod engine;
pub mod spec;
pub mod trace;

pub use budget::{BudgetLimits, OnBudget};
pub use def::PipelineDef;
pub use engine::{
    Answer, Engine, ExecError, ExecRequest, ExecResult, ModelEntry, OutcomeStats, PluginEntry,
};
pub use spec::Node;
pub use trace::{
    AttemptKind, AttemptOutcome, AttemptRecord, RequestOutcome, RequestTrace, VerdictRecord,
};
