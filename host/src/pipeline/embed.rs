//! One embeddings call of a raw model, under the same budget, tenant spend limits,
//! pricing and trace as a chat model call: reserved at its estimate before it is made,
//! settled to the upstream's count after, recorded as one attempt at node `embeddings`.

use std::sync::Arc;

use tracing::field::Empty;
use tracing::Instrument;

use super::budget::{Budget, BudgetLimits};
use super::context::RequestCtx;
use super::engine::Engine;
use super::error::ExecError;
use super::trace::{AttemptKind, AttemptOutcome, AttemptRecord, RequestOutcome, RequestTrace};
use crate::providers::{EmbeddingRequest, EmbeddingResponse, Sampling, Usage};
use crate::tenancy::TenantSpend;

/// The node an embeddings call is recorded at in its trace.
pub const EMBEDDINGS_NODE: &str = "embeddings";

/// An embeddings request to run.
pub struct EmbedRequest {
    pub id: String,
    pub tenant: String,
    /// The configured model's name (checked by the caller: a raw model the tenant may
    /// call, whose provider embeds).
    pub model: String,
    /// The call as it goes upstream, but for its model name and timeout, set by the
    /// engine.
    pub call: EmbeddingRequest,
    /// Limits from the request (headers); they only tighten `default_budget`.
    pub budget: BudgetLimits,
    pub spend: Option<Arc<TenantSpend>>,
}

pub struct EmbedResult {
    pub result: Result<EmbeddingResponse, ExecError>,
    pub trace: RequestTrace,
}

impl Engine {
    /// Runs one embeddings call. Input tokens are priced at the model's input price; no
    /// output is billed.
    pub async fn embed(&self, request: EmbedRequest) -> EmbedResult {
        let EmbedRequest {
            id,
            tenant,
            model,
            call,
            budget,
            spend,
        } = request;
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let ctx = RequestCtx::new(
            Budget::with_tenant(self.default_budget.tightened_by(budget), spend),
            tenant.clone(),
            model.clone(),
            Sampling::default(),
            None,
        );
        let result = self
            .embed_call(&ctx, &model, call)
            .instrument(self.embed_span(&model))
            .await;
        let attempts = ctx.take_attempts();
        let trace = RequestTrace {
            id,
            tenant,
            pipeline: model.clone(),
            created_at,
            latency_ms: ctx.ms(),
            cost_usd: attempts.iter().map(|a| a.cost_usd).sum(),
            outcome: match &result {
                Ok(_) => RequestOutcome::Unverified,
                Err(_) => RequestOutcome::Failed,
            },
            model: result.is_ok().then_some(model),
            score: None,
            // The vectors are returned, not stored: they are large and say little.
            answer: None,
            answer_attempt: None,
            answer_attempts: Vec::new(),
            error: result
                .as_ref()
                .err()
                .map(|e| crate::scrub::scrub(&format!("{}: {e}", e.code()))),
            tags: Vec::new(),
            budget: Some(ctx.budget.limits),
            attempts,
        };
        EmbedResult { result, trace }
    }

    async fn embed_call(
        &self,
        ctx: &RequestCtx,
        model: &str,
        mut call: EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ExecError> {
        let entry = self
            .models
            .get(model)
            .ok_or_else(|| ExecError::UnknownTarget(model.into()))?;
        let input_estimate = call.input.estimate_tokens();
        let estimate = entry.price.cost(Usage {
            input_tokens: input_estimate,
            output_tokens: 0,
        });
        let base = AttemptRecord {
            input_tokens: input_estimate,
            ..AttemptRecord::new(EMBEDDINGS_NODE, AttemptKind::Model, model, ctx.ms())
        };
        let (reservation, seq, started) =
            super::model_call::reserve_attempt(ctx, estimate, base).await?;
        call.model.clone_from(&entry.upstream);
        call.timeout = ctx.budget.remaining();
        let result = entry.provider.embed(&call).await;
        let now = ctx.ms();
        let span = tracing::Span::current();
        match result {
            Ok(reply) => {
                let cost = entry.price.cost(Usage {
                    input_tokens: reply.input_tokens,
                    output_tokens: 0,
                });
                reservation.settle(cost);
                span.record("gen_ai.usage.input_tokens", i64::from(reply.input_tokens))
                    .record("gen_ai.response.model", reply.model.as_str())
                    .record("arbiter.cost_usd", cost)
                    .record("arbiter.attempt.outcome", "completed");
                ctx.update(seq, |r| {
                    r.latency_ms = now - started;
                    r.input_tokens = reply.input_tokens;
                    r.cost_usd = cost;
                    r.outcome = AttemptOutcome::Unverified;
                });
                Ok(reply)
            }
            Err(error) => {
                // Failed calls are not billed by providers; the estimate is released.
                reservation.settle(0.0);
                Err(super::model_call::attempt_failed(
                    ctx,
                    seq,
                    now - started,
                    model,
                    error,
                ))
            }
        }
    }

    /// The call's span, as the OpenTelemetry GenAI conventions name an embeddings call.
    fn embed_span(&self, model: &str) -> tracing::Span {
        let entry = self.models.get(model);
        tracing::info_span!(
            "model call",
            otel.name = format!("embeddings {model}"),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = "embeddings",
            gen_ai.provider.name = entry.map(|e| e.provider_name.as_str()),
            gen_ai.request.model = entry.map(|e| e.upstream.as_str()),
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            arbiter.model = model,
            arbiter.node = EMBEDDINGS_NODE,
            arbiter.cost_usd = Empty,
            arbiter.attempt.outcome = Empty,
            error.type = Empty,
        )
    }
}
