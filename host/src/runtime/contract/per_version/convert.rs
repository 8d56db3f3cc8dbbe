// Conversions between one contract version's records and the host's own
// (`runtime::types`), for the records no version has changed. `include!`d by each
// `v<version>/convert.rs`, next to the conversions of what that version changed.

use super::arbiter::plugin::types as wit;
use super::arbiter::plugin::{log as wlog, model as wmodel};
use super::exports::arbiter::plugin::{decomposition as wdec, routing as wroute};
use crate::runtime::types as host;

fn decision_from(d: wit::Decision) -> host::Decision {
    match d {
        wit::Decision::Accept => host::Decision::Accept,
        wit::Decision::Reject => host::Decision::Reject,
        wit::Decision::Abstain => host::Decision::Abstain,
    }
}

fn decision_to(d: host::Decision) -> wit::Decision {
    match d {
        host::Decision::Accept => wit::Decision::Accept,
        host::Decision::Reject => wit::Decision::Reject,
        host::Decision::Abstain => wit::Decision::Abstain,
    }
}

pub(super) fn config_to(config: &host::PluginConfig) -> Vec<(String, String)> {
    config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn verdict_from(v: wit::Verdict) -> host::Verdict {
    host::Verdict {
        score: v.score,
        decision: decision_from(v.decision),
        reason: v.reason,
        checks: v
            .checks
            .into_iter()
            .map(|c| host::Check {
                name: c.name,
                passed: c.passed,
                message: c.message,
            })
            .collect(),
        details: v
            .details
            .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
    }
}

fn verdict_to(v: &host::Verdict) -> wit::Verdict {
    wit::Verdict {
        score: v.score,
        decision: decision_to(v.decision),
        reason: v.reason.clone(),
        checks: v
            .checks
            .iter()
            .map(|c| wit::Check {
                name: c.name.clone(),
                passed: c.passed,
                message: c.message.clone(),
            })
            .collect(),
        details: v.details.as_ref().map(|d| match d {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

pub(super) fn judged_to(j: &host::Judged) -> wit::Judged {
    wit::Judged {
        candidate: candidate_to(&j.candidate),
        verdict: j.verdict.as_ref().map(verdict_to),
    }
}

pub(super) fn selection_from(s: wit::Selection) -> host::Selection {
    host::Selection {
        scores: s.scores,
        reason: s.reason,
    }
}

pub(super) fn info_from(i: wit::PluginInfo) -> host::PluginInfo {
    host::PluginInfo {
        name: i.name,
        version: i.version,
        kind: match i.kind {
            wit::PluginKind::Verifier => host::PluginKind::Verifier,
            wit::PluginKind::Router => host::PluginKind::Router,
            wit::PluginKind::Decomposer => host::PluginKind::Decomposer,
        },
        description: i.description,
        stateless: i.stateless,
        config_keys: i
            .config_keys
            .into_iter()
            .map(|k| host::ConfigKey {
                name: k.name,
                description: k.description,
                default: k.default,
            })
            .collect(),
    }
}

pub(super) fn failure_from(e: wit::PluginError) -> host::PluginFailure {
    match e {
        wit::PluginError::InvalidConfig(m) => host::PluginFailure::InvalidConfig(m),
        wit::PluginError::InvalidInput(m) => host::PluginFailure::InvalidInput(m),
        wit::PluginError::Failed(m) => host::PluginFailure::Failed(m),
    }
}

pub(super) fn stats_to(s: &host::ModelStats) -> wit::ModelStats {
    wit::ModelStats {
        attempts: s.attempts,
        success_rate: s.success_rate,
        latency_p50_ms: s.latency_p50_ms,
        latency_p95_ms: s.latency_p95_ms,
    }
}

pub(super) fn option_to(o: &host::ModelOption) -> wroute::ModelOption {
    wroute::ModelOption {
        name: o.name.clone(),
        input_price: o.input_price,
        output_price: o.output_price,
        stats: o.stats.as_ref().map(stats_to),
    }
}

pub(super) fn decision_route_from(d: wroute::RouteDecision) -> host::RouteDecision {
    host::RouteDecision {
        steps: d
            .steps
            .into_iter()
            .map(|s| host::RouteStep {
                target: s.target,
                samples: s.samples,
                min_score: s.min_score,
            })
            .collect(),
        reason: d.reason,
    }
}

pub(super) fn plan_from(p: wdec::Plan) -> host::Plan {
    host::Plan {
        subtasks: p
            .subtasks
            .into_iter()
            .map(|s| host::Subtask {
                id: s.id,
                prompt: s.prompt,
                depends_on: s.depends_on,
                route: s.route,
                verify: s.verify,
            })
            .collect(),
        reason: p.reason,
    }
}

pub(super) fn subresult_to(r: &host::Subresult) -> wdec::Subresult {
    wdec::Subresult {
        id: r.id.clone(),
        answer: r.answer.clone(),
        model: r.model.clone(),
        score: r.score,
    }
}

pub(super) fn level_from(l: wlog::Level) -> host::LogLevel {
    match l {
        wlog::Level::Trace => host::LogLevel::Trace,
        wlog::Level::Debug => host::LogLevel::Debug,
        wlog::Level::Info => host::LogLevel::Info,
        wlog::Level::Warn => host::LogLevel::Warn,
        wlog::Level::Error => host::LogLevel::Error,
    }
}

pub(super) fn completion_to(c: host::Completion) -> wmodel::Completion {
    wmodel::Completion {
        text: c.text,
        model: c.model,
        input_tokens: c.input_tokens,
        output_tokens: c.output_tokens,
    }
}

pub(super) fn model_error_to(e: host::ModelError) -> wmodel::ModelError {
    match e {
        host::ModelError::Denied(m) => wmodel::ModelError::Denied(m),
        host::ModelError::OverBudget(m) => wmodel::ModelError::OverBudget(m),
        host::ModelError::Failed(m) => wmodel::ModelError::Failed(m),
    }
}
