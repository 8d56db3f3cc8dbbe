//! What a request did, attempt by attempt: the record stored in the trace store, returned
//! by `GET /v1/traces/{id}`, aggregated into per-model statistics and metrics.

use serde::{Deserialize, Serialize};

use crate::runtime::types::Decision;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    Model,
    Router,
    Decomposer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Verified and accepted.
    Accepted,
    /// Verified and rejected.
    Rejected,
    /// Answered; no verifier judged it.
    Unverified,
    /// Dropped before it finished (another answer won first); partial cost recorded.
    Cancelled,
    /// The upstream or plugin failed.
    Failed,
    /// Not started: the request's budget could not pay for it.
    OverBudget,
    /// Still running (never stored: a finished request has no such attempt).
    InFlight,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Accepted => "accepted",
            AttemptOutcome::Rejected => "rejected",
            AttemptOutcome::Unverified => "unverified",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::OverBudget => "over_budget",
            AttemptOutcome::InFlight => "in_flight",
        }
    }
}

/// Checks kept per verdict in a trace: each is the plugin's own output, stored with
/// every attempt it judged, so a verifier reporting thousands cannot bloat the store.
pub const MAX_CHECKS: usize = 32;

/// The checks a trace keeps of a verdict: failed ones first (what a reader looks for),
/// at most [`MAX_CHECKS`].
pub fn kept_checks(checks: &[crate::runtime::types::Check]) -> Vec<crate::runtime::types::Check> {
    let (failed, passed): (Vec<_>, Vec<_>) = checks.iter().partition(|c| !c.passed);
    failed
        .into_iter()
        .chain(passed)
        .take(MAX_CHECKS)
        .cloned()
        .collect()
}

/// One verifier's judgement of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub plugin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub checks_failed: u32,
    /// The verifier's checks, passed and failed (at most [`MAX_CHECKS`]): what the reason
    /// sums up, kept for whoever reads the trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::runtime::types::Check>,
    /// `code: message` when the verifier itself failed (trap, deadline, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub wall_us: f64,
    /// The verdict was an earlier judgement of the same candidate, not a new call
    /// (evaluation only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub seq: u32,
    /// Where in the pipeline tree, e.g. `cascade[1]/best_of[3]`.
    pub node: String,
    pub kind: AttemptKind,
    /// The model (or the router/decomposer plugin).
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    /// Milliseconds from the start of the request.
    pub started_ms: f64,
    pub latency_ms: f64,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<VerdictRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The tools the model called, in OpenAI's shape: what a verifier judged and what an
    /// operator needs to see why a call was rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<crate::runtime::types::ToolCall>,
    /// Why the model stopped (`stop`, `length`, ...), as the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Ground-truth label of a replayed answer; evaluation only, never stored.
    #[serde(skip)]
    pub label: Option<bool>,
}

impl AttemptRecord {
    /// An attempt at `node` starting at `started_ms`, nothing measured yet: every
    /// attempt (model call, router, decomposer) is built from this one shape.
    pub fn new(node: &str, kind: AttemptKind, model: &str, started_ms: f64) -> AttemptRecord {
        AttemptRecord {
            seq: 0,
            node: node.into(),
            kind,
            model: model.into(),
            sample: None,
            started_ms,
            latency_ms: 0.0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            outcome: AttemptOutcome::InFlight,
            verdicts: vec![],
            score: None,
            error: None,
            text: None,
            tool_calls: Vec::new(),
            finish_reason: None,
            label: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// The answer was verified and accepted.
    Accepted,
    /// The answer is unverified (no verifier in its path).
    Unverified,
    /// Every option was tried; the best answer is returned although not accepted.
    Rejected,
    /// The budget ran out; the best accepted answer so far is returned.
    BudgetBest,
    /// No answer.
    Failed,
    /// The client went away first; what was in flight was dropped.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestTrace {
    pub id: String,
    pub tenant: String,
    pub pipeline: String,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub latency_ms: f64,
    pub cost_usd: f64,
    pub outcome: RequestOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The attempt whose answer was returned (`seq`; none for a composed answer): it
    /// names the answer's finish reason and verdicts in the response, and the console
    /// marks it on the timeline. Stored with the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_attempt: Option<u32>,
    /// With `n` > 1: the attempt of each returned choice, in choice order (the first is
    /// `answer_attempt`); empty for a single answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer_attempts: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The limits the request ran under (the pipeline's, tightened by the request's), to
    /// set what it spent against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<super::BudgetLimits>,
    pub attempts: Vec<AttemptRecord>,
}

impl RequestTrace {
    pub fn model_calls(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Model && a.outcome != AttemptOutcome::OverBudget)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::Check;

    #[test]
    fn a_trace_keeps_failed_checks_first_and_a_bounded_number() {
        let check = |i: usize| Check {
            name: format!("c{i}"),
            passed: !i.is_multiple_of(10),
            message: None,
        };
        let checks: Vec<Check> = (0..100).map(check).collect();
        let kept = kept_checks(&checks);
        assert_eq!(kept.len(), MAX_CHECKS);
        let names: Vec<&str> = kept.iter().take(11).map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["c0", "c10", "c20", "c30", "c40", "c50", "c60", "c70", "c80", "c90", "c1"]
        );
        assert_eq!(kept_checks(&checks[1..3]).len(), 2);
    }
}
