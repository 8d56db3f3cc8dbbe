//! One model call under the request's budget, recorded as an attempt: whole, or
//! streamed to the client as it is generated (a pass-through request). Both share the
//! reservation, the attempt record, pricing and cancellation.

use std::time::Duration;

use futures::StreamExt;
use tracing::field::Empty;
use tracing::Instrument;

use super::budget::{BudgetError, Reservation};
use super::context::RequestCtx;
use super::engine::{Engine, ModelEntry};
use super::error::ExecError;
use super::in_flight::InFlight;
use super::request::Answer;
use super::request::{DeltaSink, Streamed};
use super::trace::{AttemptKind, AttemptOutcome, AttemptRecord};
use crate::providers::{
    estimate_prompt_tokens, estimate_tokens, ChatRequest, Choice, ProviderError, Sampling,
    StreamEvent, Usage,
};
use crate::runtime::types::{Candidate, Task, TokenLogprob, ToolCall};

/// Tokens assumed for an answer when estimating a call's cost before making it.
const DEFAULT_OUTPUT_ESTIMATE: u32 = 256;

/// A model's answer before verification.
#[derive(Debug, Clone)]
pub(crate) struct Sampled {
    pub(crate) text: String,
    pub(crate) tool_calls: Vec<ToolCall>,
    /// The upstream's `logprobs` object, when the request asked for it.
    pub(crate) logprobs: Option<serde_json::Value>,
    pub(crate) finish_reason: Option<String>,
    /// The call's other choices when it asked for `n` > 1, in the upstream's order.
    pub(crate) others: Vec<Choice>,
    pub(crate) model: String,
    pub(crate) seq: u32,
    pub(crate) label: Option<bool>,
}

impl Sampled {
    /// What a verifier is shown of this answer.
    pub(crate) fn candidate(&self) -> Candidate {
        Candidate {
            index: self.seq,
            model: self.model.clone(),
            text: self.text.clone(),
            tool_calls: self.tool_calls.clone(),
            logprobs: self
                .logprobs
                .as_ref()
                .map(TokenLogprob::from_openai)
                .unwrap_or_default(),
        }
    }

    /// This answer as judged.
    pub(crate) fn answer(self, accepted: bool, verified: bool, score: Option<f64>) -> Answer {
        let alternatives = self
            .others
            .into_iter()
            .map(|c| Answer {
                text: c.text,
                tool_calls: c.tool_calls,
                logprobs: c.logprobs,
                finish_reason: c.finish_reason,
                alternatives: Vec::new(),
                model: self.model.clone(),
                accepted,
                verified,
                score,
                attempt: Some(self.seq),
                label: c.correct,
            })
            .collect();
        Answer {
            text: self.text,
            tool_calls: self.tool_calls,
            logprobs: self.logprobs,
            finish_reason: self.finish_reason,
            alternatives,
            model: self.model,
            accepted,
            verified,
            score,
            attempt: Some(self.seq),
            label: self.label,
        }
    }
}

/// What the upstream answered.
struct Reply {
    text: String,
    tool_calls: Vec<ToolCall>,
    logprobs: Option<serde_json::Value>,
    /// The model that answered, as the upstream names it.
    model: Option<String>,
    usage: Usage,
    finish_reason: Option<String>,
    others: Vec<Choice>,
    /// Replay only: the recorded answer's label and position among its samples.
    label: Option<bool>,
    sample: Option<u32>,
}

/// A reserved, recorded call on its way to the upstream.
struct ModelCall<'a> {
    entry: &'a ModelEntry,
    model: &'a str,
    path: &'a str,
    request: ChatRequest,
    guard: InFlight<'a>,
}

impl Engine {
    /// One model call under the budget, recorded as an attempt.
    pub(crate) async fn call_model(
        &self,
        ctx: &RequestCtx,
        path: &str,
        model: &str,
        task: &Task,
        sampling: &Sampling,
    ) -> Result<(Sampled, Usage), ExecError> {
        self.call_model_n(ctx, path, model, task, sampling, 1).await
    }

    /// One model call for `n` choices (one attempt, billed as the upstream reports).
    pub(crate) async fn call_model_n(
        &self,
        ctx: &RequestCtx,
        path: &str,
        model: &str,
        task: &Task,
        sampling: &Sampling,
        n: u32,
    ) -> Result<(Sampled, Usage), ExecError> {
        async {
            let call = self.start_call(ctx, path, model, task, sampling, n).await?;
            let result = call.entry.provider.chat(&call.request).await.map(|r| {
                let mut choices = r.choices.into_iter();
                let c = choices.next().unwrap_or_else(|| Choice::text("", None));
                // An upstream that sends more than asked for is not given the extra say.
                let others = choices.take(n.saturating_sub(1) as usize).collect();
                Reply {
                    others,
                    text: c.text,
                    tool_calls: c.tool_calls,
                    logprobs: c.logprobs,
                    model: Some(r.model).filter(|m| !m.is_empty()),
                    usage: r.usage,
                    finish_reason: c.finish_reason,
                    label: c.correct,
                    sample: c.sample,
                }
            });
            call.finish(result)
        }
        .instrument(self.model_span(model, path))
        .await
    }

    /// A model call whose answer is sent to `sink` piece by piece as the upstream
    /// generates it. Once the client is gone (the sink refuses) the call is dropped and
    /// recorded as cancelled.
    pub(crate) async fn stream_model(
        &self,
        ctx: &RequestCtx,
        path: &str,
        model: &str,
        task: &Task,
        sink: DeltaSink,
    ) -> Result<(Sampled, Usage), ExecError> {
        self.stream_model_inner(ctx, path, model, task, sink)
            .instrument(self.model_span(model, path))
            .await
    }

    async fn stream_model_inner(
        &self,
        ctx: &RequestCtx,
        path: &str,
        model: &str,
        task: &Task,
        sink: DeltaSink,
    ) -> Result<(Sampled, Usage), ExecError> {
        let mut call = self
            .start_call(ctx, path, model, task, &ctx.sampling, 1)
            .await?;
        let mut events = match call.entry.provider.chat_stream(&call.request).await {
            Ok(events) => events,
            Err(e) => return call.finish(Err(e)),
        };
        if sink.send(Streamed::Opened).await.is_err() {
            record_cancelled();
            return Err(ExecError::Cancelled);
        }
        ctx.mark_streamed();
        let mut usage = Usage {
            input_tokens: call.guard.input_tokens,
            output_tokens: 0,
        };
        let mut finish = None;
        let mut tool_calls = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(StreamEvent::Delta(d)) => {
                    call.guard.streamed.push_str(&d);
                    if sink.send(Streamed::Delta(d)).await.is_err() {
                        record_cancelled();
                        return Err(ExecError::Cancelled);
                    }
                }
                Ok(StreamEvent::ToolCall(t)) => {
                    t.apply(&mut tool_calls);
                    if sink.send(Streamed::ToolCall(t)).await.is_err() {
                        return Err(ExecError::Cancelled);
                    }
                }
                // Passed on only: a streamed answer has no verifier to read them.
                Ok(StreamEvent::Logprobs(l)) => {
                    if sink.send(Streamed::Logprobs(l)).await.is_err() {
                        return Err(ExecError::Cancelled);
                    }
                }
                Ok(StreamEvent::Usage(u)) => {
                    if u.input_tokens > 0 {
                        usage.input_tokens = u.input_tokens;
                    }
                    usage.output_tokens = usage.output_tokens.max(u.output_tokens);
                }
                Ok(StreamEvent::Finish(r)) => finish = Some(r),
                Err(e) => return call.finish(Err(e)),
            }
        }
        let text = std::mem::take(&mut call.guard.streamed);
        if usage.output_tokens == 0 {
            usage.output_tokens = estimate_tokens(&text)
                + tool_calls
                    .iter()
                    .map(|c| estimate_tokens(&c.arguments))
                    .sum::<u32>();
        }
        let reply = Reply {
            text,
            tool_calls,
            logprobs: None,
            others: Vec::new(),
            model: None,
            usage,
            finish_reason: Some(finish.unwrap_or_else(|| "stop".into())),
            label: None,
            sample: None,
        };
        call.finish(Ok(reply))
    }

    /// Reserves the call's estimated cost and records it as in flight; a call the
    /// budget cannot pay for is recorded as over budget and not made.
    async fn start_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        path: &'a str,
        model: &'a str,
        task: &Task,
        sampling: &Sampling,
        n: u32,
    ) -> Result<ModelCall<'a>, ExecError> {
        let entry = self
            .models
            .get(model)
            .ok_or_else(|| ExecError::UnknownTarget(model.into()))?;
        let sample = ctx.next_sample(model);
        let input_estimate = estimate_prompt_tokens(&task.messages);
        // Chat APIs also bill each message's framing and the reply's priming (3 tokens
        // each, as OpenAI counts them): an estimate without them falls short on every
        // call, and concurrent calls near a spend limit then overshoot it together.
        let framing = 3 * task.messages.len() as u32 + 3;
        let estimate = entry.price.cost(Usage {
            input_tokens: input_estimate + framing,
            // Each of `n` choices is billed as its own answer.
            output_tokens: sampling
                .max_tokens
                .unwrap_or(DEFAULT_OUTPUT_ESTIMATE)
                .saturating_mul(n.max(1)),
        });
        let base = AttemptRecord {
            sample: Some(sample),
            input_tokens: input_estimate,
            ..AttemptRecord::new(path, AttemptKind::Model, model, ctx.ms())
        };
        let (reservation, seq, started) = reserve_attempt(ctx, estimate, base).await?;
        Ok(ModelCall {
            entry,
            model,
            path,
            request: ChatRequest {
                model: entry.upstream.clone(),
                messages: task.messages.clone(),
                sampling: sampling.clone(),
                n: n.max(1),
                sample_index: sample,
                timeout: ctx.budget.remaining(),
            },
            guard: InFlight {
                ctx,
                seq,
                started,
                price: entry.price,
                input_tokens: input_estimate,
                streamed: String::new(),
                reservation: Some(reservation),
            },
        })
    }

    /// A model call's span, named and attributed as the OpenTelemetry GenAI semantic
    /// conventions say (`chat {model}`, `gen_ai.*`); what the call returns is recorded
    /// on it when it ends.
    fn model_span(&self, model: &str, path: &str) -> tracing::Span {
        let entry = self.models.get(model);
        tracing::info_span!(
            "model call",
            otel.name = format!("chat {model}"),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = entry.map(|e| e.provider_name.as_str()),
            gen_ai.request.model = entry.map(|e| e.upstream.as_str()),
            gen_ai.response.model = Empty,
            gen_ai.response.finish_reasons = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            arbiter.model = model,
            arbiter.node = path,
            arbiter.cost_usd = Empty,
            arbiter.attempt.outcome = Empty,
            error.type = Empty,
        )
    }
}

fn record_cancelled() {
    tracing::Span::current().record("arbiter.attempt.outcome", "cancelled");
}

impl ModelCall<'_> {
    /// Settles the reservation with the actual cost and completes the attempt record.
    fn finish(
        mut self,
        result: Result<Reply, ProviderError>,
    ) -> Result<(Sampled, Usage), ExecError> {
        let ctx = self.guard.ctx;
        let (seq, started) = (self.guard.seq, self.guard.started);
        tracing::debug!(
            node = self.path,
            model = self.model,
            ms = ctx.ms() - started,
            error = result.as_ref().err().map(|e| e.code()),
            "model call"
        );
        let reservation = self
            .guard
            .reservation
            .take()
            .expect("reservation held until the call returns");
        let now = ctx.ms();
        match result {
            Ok(reply) => {
                let cost = self.entry.price.cost(reply.usage);
                reservation.settle(cost);
                let span = tracing::Span::current();
                // As i64: tracing-opentelemetry exports a u64 recorded later as a string.
                span.record(
                    "gen_ai.usage.input_tokens",
                    i64::from(reply.usage.input_tokens),
                )
                .record(
                    "gen_ai.usage.output_tokens",
                    i64::from(reply.usage.output_tokens),
                )
                .record("arbiter.cost_usd", cost)
                .record("arbiter.attempt.outcome", "completed");
                if let Some(m) = &reply.model {
                    span.record("gen_ai.response.model", m.as_str());
                }
                if let Some(r) = &reply.finish_reason {
                    span.record("gen_ai.response.finish_reasons", r.as_str());
                }
                let usage = reply.usage;
                let text = reply.text;
                ctx.update(seq, |r| {
                    r.latency_ms = now - started;
                    r.input_tokens = usage.input_tokens;
                    r.output_tokens = usage.output_tokens;
                    r.cost_usd = cost;
                    r.outcome = AttemptOutcome::Unverified;
                    r.text = Some(text.clone());
                    r.tool_calls = reply.tool_calls.clone();
                    r.label = reply.label;
                    r.finish_reason = reply.finish_reason.clone();
                    if let Some(s) = reply.sample {
                        r.sample = Some(s);
                    }
                });
                Ok((
                    Sampled {
                        text,
                        tool_calls: reply.tool_calls,
                        logprobs: reply.logprobs,
                        finish_reason: reply.finish_reason,
                        others: reply.others,
                        model: self.model.into(),
                        seq,
                        label: reply.label,
                    },
                    usage,
                ))
            }
            Err(error) => {
                reservation.settle(0.0);
                Err(attempt_failed(ctx, seq, now - started, self.model, error))
            }
        }
    }
}

/// Records a failed upstream call on its attempt and says why the request step failed:
/// the provider's error, or the request's deadline when that is what ran out. (Failed
/// calls are not billed by providers, so the caller releases the reservation.)
pub(crate) fn attempt_failed(
    ctx: &RequestCtx,
    seq: u32,
    latency_ms: f64,
    model: &str,
    error: ProviderError,
) -> ExecError {
    tracing::Span::current()
        .record("arbiter.attempt.outcome", "failed")
        .record("error.type", error.code())
        .record("otel.status_code", "ERROR");
    ctx.update(seq, |r| {
        r.latency_ms = latency_ms;
        r.outcome = AttemptOutcome::Failed;
        r.error = Some(format!("{}: {error}", error.code()));
    });
    // The upstream timeout was the request's own deadline running out.
    let deadline_hit = matches!(error, ProviderError::Timeout(_))
        && ctx
            .budget
            .remaining()
            .is_some_and(|r| r < Duration::from_millis(5));
    if deadline_hit {
        return ExecError::OverBudget(BudgetError::Deadline);
    }
    ExecError::Provider {
        model: model.into(),
        error,
    }
}

/// Reserves an attempt's estimated cost and records the attempt as started (`seq`, start
/// ms); one the budget cannot pay for is recorded as over budget and not made.
pub(crate) async fn reserve_attempt<'a>(
    ctx: &'a RequestCtx,
    estimate: f64,
    base: AttemptRecord,
) -> Result<(Reservation<'a>, u32, f64), ExecError> {
    match ctx.budget.reserve(estimate).await {
        Ok(reservation) => {
            let started = base.started_ms;
            Ok((reservation, ctx.push(base), started))
        }
        Err(e) => {
            tracing::Span::current()
                .record("arbiter.attempt.outcome", "over_budget")
                .record("error.type", "over_budget")
                .record("otel.status_code", "ERROR");
            ctx.push(AttemptRecord {
                outcome: AttemptOutcome::OverBudget,
                error: Some(e.to_string()),
                ..base
            });
            Err(ExecError::OverBudget(e))
        }
    }
}
