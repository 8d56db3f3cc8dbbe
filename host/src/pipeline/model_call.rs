//! One model call under the request's budget, recorded as an attempt: whole, or
//! streamed to the client as it is generated (a pass-through request). Both share the
//! reservation, the attempt record, pricing and cancellation.

use std::time::Duration;

use futures::StreamExt;
use tracing::field::Empty;
use tracing::Instrument;

use super::budget::BudgetError;
use super::context::RequestCtx;
use super::engine::{Engine, ModelEntry};
use super::error::ExecError;
use super::in_flight::InFlight;
use super::request::{DeltaSink, Streamed};
use super::trace::{AttemptKind, AttemptOutcome, AttemptRecord};
use crate::providers::{
    estimate_prompt_tokens, estimate_tokens, ChatRequest, ProviderError, Sampling, StreamEvent,
    Usage,
};
use crate::runtime::types::Task;

/// Tokens assumed for an answer when estimating a call's cost before making it.
const DEFAULT_OUTPUT_ESTIMATE: u32 = 256;

/// A model's answer before verification.
#[derive(Debug, Clone)]
pub(crate) struct Sampled {
    pub(crate) text: String,
    pub(crate) model: String,
    pub(crate) seq: u32,
    pub(crate) label: Option<bool>,
}

/// What the upstream answered.
struct Reply {
    text: String,
    /// The model that answered, as the upstream names it.
    model: Option<String>,
    usage: Usage,
    finish_reason: Option<String>,
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
        async {
            let call = self.start_call(ctx, path, model, task, sampling).await?;
            let result = call.entry.provider.chat(&call.request).await.map(|r| {
                let choice = r.choices.into_iter().next();
                let (text, finish_reason, label, sample) = match choice {
                    Some(c) => (c.text, c.finish_reason, c.correct, c.sample),
                    None => (String::new(), None, None, None),
                };
                Reply {
                    text,
                    model: Some(r.model).filter(|m| !m.is_empty()),
                    usage: r.usage,
                    finish_reason,
                    label,
                    sample,
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
            .start_call(ctx, path, model, task, &ctx.sampling)
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
        while let Some(event) = events.next().await {
            match event {
                Ok(StreamEvent::Delta(d)) => {
                    call.guard.streamed.push_str(&d);
                    if sink.send(Streamed::Delta(d)).await.is_err() {
                        record_cancelled();
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
            usage.output_tokens = estimate_tokens(&text);
        }
        let reply = Reply {
            text,
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
            output_tokens: sampling.max_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        });
        let base = AttemptRecord {
            sample: Some(sample),
            input_tokens: input_estimate,
            ..AttemptRecord::new(path, AttemptKind::Model, model, ctx.ms())
        };
        let reservation = match ctx.budget.reserve(estimate).await {
            Ok(r) => r,
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
                return Err(ExecError::OverBudget(e));
            }
        };
        let started = base.started_ms;
        let seq = ctx.push(base);
        Ok(ModelCall {
            entry,
            model,
            path,
            request: ChatRequest {
                model: entry.upstream.clone(),
                messages: task.messages.clone(),
                sampling: sampling.clone(),
                n: 1,
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
                    r.label = reply.label;
                    r.finish_reason = reply.finish_reason;
                    if let Some(s) = reply.sample {
                        r.sample = Some(s);
                    }
                });
                Ok((
                    Sampled {
                        text,
                        model: self.model.into(),
                        seq,
                        label: reply.label,
                    },
                    usage,
                ))
            }
            Err(error) => {
                // Failed calls are not billed by providers; the estimate is released.
                reservation.settle(0.0);
                tracing::Span::current()
                    .record("arbiter.attempt.outcome", "failed")
                    .record("error.type", error.code())
                    .record("otel.status_code", "ERROR");
                ctx.update(seq, |r| {
                    r.latency_ms = now - started;
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
                    return Err(ExecError::OverBudget(BudgetError::Deadline));
                }
                Err(ExecError::Provider {
                    model: self.model.into(),
                    error,
                })
            }
        }
    }
}
