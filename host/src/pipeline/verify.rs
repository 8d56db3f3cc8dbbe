//! Verification chains: every verifier of a chain judges a candidate, and their
//! weighted verdicts decide whether it is accepted.

use std::sync::Arc;

use tracing::field::Empty;
use tracing::Instrument;

use super::context::RequestCtx;
use super::engine::Engine;
use super::error::ExecError;
use super::model_call::Sampled;
use super::plugin_logs::emit_logs;
use super::request::Answer;
use super::spec::VerifierRef;
use super::trace::{AttemptOutcome, VerdictRecord};
use super::verdict_memo::{Kept, VerdictMemo};
use crate::runtime::capability::Grants;
use crate::runtime::types::*;
use crate::runtime::{Error as RuntimeError, Outcome};

/// The verification chain's combined judgement of one candidate.
#[derive(Debug, Clone)]
pub(crate) struct Judgement {
    pub(crate) accepted: bool,
    pub(crate) score: f64,
    /// The first verifier's verdict (the one a cross-candidate step needs).
    pub(crate) primary: Option<Verdict>,
}

impl Engine {
    /// Runs the verification chain on one candidate and records the verdicts.
    pub(crate) async fn judge(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        sampled: &Sampled,
        verify: &[VerifierRef],
        threshold: f64,
    ) -> Result<Judgement, ExecError> {
        let candidate = sampled.candidate();
        let calls = verify.iter().map(|v| {
            let candidate = &candidate;
            let span = tracing::info_span!(
                "verify",
                otel.name = format!("verify {}", v.plugin),
                otel.status_code = Empty,
                arbiter.plugin.name = %v.plugin,
                arbiter.plugin.version = Empty,
                arbiter.plugin.digest = Empty,
                arbiter.node = path,
                arbiter.candidate = i64::from(candidate.index),
                arbiter.verdict.decision = Empty,
                arbiter.verdict.score = Empty,
                error.type = Empty,
            );
            async move {
                let entry = self.plugin(ctx, &v.plugin, PluginKind::Verifier)?;
                let config = self.merged(entry, &v.config);
                let started = std::time::Instant::now();
                // Reused only from plugins without capabilities: those are deterministic.
                let memo = self
                    .verdicts
                    .as_ref()
                    .filter(|_| entry.plugin.options().grants == Grants::NONE)
                    .and_then(|m| {
                        let digest = &entry.plugin.load_report().digest;
                        Some((m, VerdictMemo::key(digest, &config, task, candidate)?))
                    });
                let kept = memo.as_ref().and_then(|(m, key)| m.get(key));
                let reused = kept.is_some();
                let result = match kept {
                    Some(Kept::Verdict(verdict)) => Ok(Outcome {
                        value: verdict,
                        stats: Default::default(),
                    }),
                    Some(Kept::PastDeadline(d)) => Err(RuntimeError::DeadlineExceeded(d)),
                    None => {
                        let result = entry
                            .plugin
                            .verify(&config, task, candidate, self.plugin_ctx(ctx, path, entry))
                            .await;
                        if let Some((m, key)) = &memo {
                            m.keep(*key, &result);
                        }
                        result
                    }
                };
                let span = tracing::Span::current();
                span.record(
                    "arbiter.plugin.version",
                    entry.plugin.info().version.as_str(),
                )
                .record(
                    "arbiter.plugin.digest",
                    entry.plugin.load_report().digest.as_str(),
                );
                match &result {
                    Ok(o) => {
                        span.record("arbiter.verdict.decision", decision_name(o.value.decision))
                            .record("arbiter.verdict.score", o.value.score);
                    }
                    Err(e) => {
                        span.record("error.type", e.code())
                            .record("otel.status_code", "ERROR");
                    }
                }
                Ok::<_, ExecError>((v, result, started.elapsed(), reused))
            }
            .instrument(span)
        });
        let results = futures::future::join_all(calls).await;
        let mut records = Vec::new();
        let (mut weighted, mut weights) = (0.0, 0.0);
        let (mut any_accept, mut any_reject) = (false, false);
        let mut primary = None;
        for (i, r) in results.into_iter().enumerate() {
            let (v, result, wall, reused) = r?;
            let wall_us = wall.as_secs_f64() * 1e6;
            match result {
                Ok(outcome) => {
                    emit_logs(&v.plugin, &outcome.stats.logs);
                    let verdict = outcome.value;
                    weighted += v.weight * verdict.score;
                    weights += v.weight;
                    any_accept |= verdict.decision == Decision::Accept;
                    any_reject |= verdict.decision == Decision::Reject;
                    records.push(VerdictRecord {
                        plugin: v.plugin.clone(),
                        score: Some(verdict.score),
                        decision: Some(verdict.decision),
                        reason: verdict.reason.clone(),
                        checks_failed: verdict.checks.iter().filter(|c| !c.passed).count() as u32,
                        checks: super::trace::kept_checks(&verdict.checks),
                        error: None,
                        wall_us,
                        reused,
                    });
                    if i == 0 {
                        primary = Some(verdict);
                    }
                }
                Err(e) => {
                    // A failing verifier costs this candidate its verdict, nothing more.
                    any_reject = true;
                    records.push(VerdictRecord {
                        plugin: v.plugin.clone(),
                        score: None,
                        decision: None,
                        reason: String::new(),
                        checks_failed: 0,
                        checks: Vec::new(),
                        error: Some(format!("{}: {e}", e.code())),
                        wall_us,
                        reused,
                    });
                }
            }
        }
        let score = if weights > 0.0 {
            weighted / weights
        } else {
            0.0
        };
        let accepted = any_accept && !any_reject && score >= threshold;
        ctx.update(sampled.seq, |r| {
            r.verdicts = records;
            r.score = Some(score);
            r.outcome = if accepted {
                AttemptOutcome::Accepted
            } else {
                AttemptOutcome::Rejected
            };
        });
        Ok(Judgement {
            accepted,
            score,
            primary,
        })
    }

    /// A sampled answer as a node's answer: judged by the chain, or unverified when
    /// there is none.
    pub(crate) async fn judged_answer(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        sampled: Sampled,
        verify: &[VerifierRef],
        threshold: f64,
    ) -> Result<Answer, ExecError> {
        if verify.is_empty() {
            return Ok(sampled.answer(true, false, None));
        }
        let j = self
            .judge(ctx, path, task, &sampled, verify, threshold)
            .await?;
        Ok(sampled.answer(j.accepted, true, Some(j.score)))
    }
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Accept => "accept",
        Decision::Reject => "reject",
        Decision::Abstain => "abstain",
    }
}
