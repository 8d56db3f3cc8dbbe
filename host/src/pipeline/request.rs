//! A request as the engine takes it, what it gives back, and the channel a streamed
//! pass-through answer travels on.

use super::budget::BudgetLimits;
use super::catalog::TenantCatalog;
use super::error::ExecError;
use super::trace::RequestTrace;
use crate::providers::Sampling;
use crate::runtime::types::Task;
use crate::tenancy::TenantSpend;
use std::sync::Arc;

/// One request to run.
#[derive(Clone)]
pub struct ExecRequest {
    pub id: String,
    pub tenant: String,
    /// A pipeline name, or a model name for a plain model call.
    pub target: String,
    pub task: Task,
    /// Limits from the request (headers); they only tighten the pipeline's.
    pub budget: BudgetLimits,
    /// The caller's sampling parameters, applied to every model call of the pipeline.
    pub sampling: Sampling,
    /// Answers wanted (`n`): more than one only where the root ranks or samples them
    /// (`Engine::answers_n`).
    pub n: u32,
    /// The tenant's spend counters, which every model call reserves against with the
    /// request's own budget (`None`: no tenant limits, as in evaluation).
    pub spend: Option<Arc<TenantSpend>>,
    /// The tenant's own plugins and pipelines as they were when the request arrived.
    pub catalog: Option<Arc<TenantCatalog>>,
}

pub struct ExecResult {
    pub answer: Option<Answer>,
    pub error: Option<ExecError>,
    pub trace: RequestTrace,
    /// The answer went out through the delta sink as it was generated (or was cut off
    /// there by `error`): only the stream's ending is left to send.
    pub streamed: bool,
}

/// What a pass-through call streams as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Streamed {
    /// The upstream accepted the request; the answer follows.
    Opened,
    Delta(String),
    ToolCall(crate::providers::ToolCallDelta),
    Logprobs(serde_json::Value),
}

/// Where a pass-through answer is streamed. The receiver is the client's connection:
/// once it is gone, sending fails and the call is cancelled.
pub type DeltaSink = tokio::sync::mpsc::Sender<Streamed>;

/// The answer a node produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// The functions the model called, if it did.
    pub tool_calls: Vec<crate::runtime::types::ToolCall>,
    /// The upstream's `logprobs` object, when asked for (OpenAI's shape).
    pub logprobs: Option<serde_json::Value>,
    /// Why the model stopped, as its provider said (none for composed answers).
    pub finish_reason: Option<String>,
    /// With `n` > 1: the next answers, best first (choices 1.. of the response).
    pub alternatives: Vec<Answer>,
    pub model: String,
    /// Accepted by its verifiers (or unverified: no verifier to ask).
    pub accepted: bool,
    pub verified: bool,
    pub score: Option<f64>,
    /// The attempt that produced it (none for composed answers).
    pub attempt: Option<u32>,
    /// Ground truth of a replayed answer (evaluation only).
    pub label: Option<bool>,
}

impl Answer {
    fn rank(&self) -> (bool, f64) {
        (
            self.accepted,
            self.score.unwrap_or(if self.verified { 0.0 } else { 0.5 }),
        )
    }

    pub(crate) fn better_than(&self, other: &Answer) -> bool {
        let (a, b) = (self.rank(), other.rank());
        a.0 && !b.0 || (a.0 == b.0 && a.1 > b.1)
    }
}
