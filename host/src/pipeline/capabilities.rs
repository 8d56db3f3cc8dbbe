//! The capabilities a plugin may be granted, served per request: `stats` (its tenant's
//! outcome statistics) and `model` (model calls billed to the request).

use std::sync::Arc;

use super::context::RequestCtx;
use super::engine::{Engine, PluginEntry};
use super::error::ExecError;
use crate::providers::Sampling;
use crate::runtime::capability::{model, stats};
use crate::runtime::types::*;
use crate::runtime::{CallContext, ModelAccess, ModelContext, StatsSource};

/// Outcome statistics kept per tenant. A tenant's routers and plans see its own traffic
/// only: counts, success rates and latencies by tag would otherwise tell one tenant
/// about another's requests.
pub trait OutcomeStats: Send + Sync {
    /// The figures plugins see: `attempts` counts the attempts whose outcome is known
    /// (verified, failed, or judged by feedback), the ones the success rate is over.
    fn query(&self, tenant: &str, model: &str, tag: Option<&str>) -> Option<ModelStats>;
    /// How many recent attempts were timed, and their median latency in ms.
    fn latency(&self, tenant: &str, model: &str) -> Option<(usize, f64)>;
}

/// What a plugin of one tenant is given through the `stats` capability.
struct TenantStats {
    stats: Arc<dyn OutcomeStats>,
    tenant: String,
}

impl StatsSource for TenantStats {
    fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats> {
        self.stats.query(&self.tenant, model, tag)
    }
}

/// Serves the `model` capability to judge plugins, billed to the request.
struct JudgeAccess {
    engine: Arc<Engine>,
    ctx: Arc<RequestCtx>,
    path: String,
}

#[async_trait::async_trait]
impl ModelAccess for JudgeAccess {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ModelError> {
        // The capability has placed the request within the pipeline's allowed models.
        let model = match request.model {
            Some(m) if self.engine.models.contains_key(&m) => m,
            Some(m) => return Err(ModelError::Denied(format!("model `{m}` is not configured"))),
            None => return Err(ModelError::Denied("no model named".into())),
        };
        let task = Task {
            messages: request.messages,
            ..Task::default()
        };
        // The judge's own parameters: the caller's `stop` or `response_format` are for
        // the answer, and would only garble a judgement.
        let sampling = Sampling {
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            ..Sampling::default()
        };
        match self
            .engine
            .call_model(&self.ctx, &self.path, &model, &task, &sampling)
            .await
        {
            Ok((s, usage)) => Ok(Completion {
                text: s.text,
                model: s.model,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            }),
            Err(ExecError::OverBudget(e)) => Err(ModelError::OverBudget(e.to_string())),
            Err(e) => Err(ModelError::Failed(e.to_string())),
        }
    }
}

impl Engine {
    pub(crate) fn plugin_ctx(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        entry: &PluginEntry,
    ) -> CallContext {
        let mut call = ctx.call_context();
        let grants = entry.plugin.options().grants;
        if grants.contains(stats::NAME) {
            call.stats = self.stats.clone().map(|stats| {
                Arc::new(TenantStats {
                    stats,
                    tenant: ctx.tenant.clone(),
                }) as Arc<dyn StatsSource>
            });
        }
        if grants.contains(model::NAME) {
            let access = Arc::new(JudgeAccess {
                engine: self.clone(),
                ctx: ctx.clone(),
                path: format!("{path}/judge"),
            });
            // Worked out per judge call, not per request: most requests have no judge.
            let allowed = Arc::new(self.judge_models(ctx.catalog.as_deref(), &ctx.target));
            call.model = Some(ModelContext::restricted(access, allowed));
        }
        call
    }
}
