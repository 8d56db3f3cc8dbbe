//! The engine: what is configured (models, plugins, pipelines), and the top-level run
//! of one request under its budget. The strategies are in `strategy/`, model calls in
//! `model_call.rs`, verification chains in `verify.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::budget::{Budget, BudgetError, BudgetLimits, OnBudget};
use super::capabilities::OutcomeStats;
use super::catalog::{TenantCatalog, OWN};
use super::context::{RequestCtx, Step};
use super::def::PipelineDef;
use super::error::ExecError;
use super::request::{Answer, DeltaSink, ExecRequest, ExecResult};
use super::spec::{settings, SettingValue};
use super::strategy::{Node, Single};
use super::trace::{AttemptRecord, RequestOutcome, RequestTrace};
use crate::providers::{Price, Provider};
use crate::runtime::types::{PluginConfig, PluginKind};
use crate::runtime::{AllowedModels, Plugin};
use crate::tenancy::Policy;

pub struct ModelEntry {
    pub provider: Arc<dyn Provider>,
    /// The provider's name in the configuration (`gen_ai.provider.name` of its spans).
    pub provider_name: String,
    /// The model's name at its provider.
    pub upstream: String,
    pub price: Price,
    /// Latency assumed before statistics exist (for `best_of` planning).
    pub expected_latency: Duration,
}

pub struct PluginEntry {
    pub plugin: Plugin,
    /// The plugin's own settings; a pipeline's settings for it are merged over these.
    pub config: PluginConfig,
}

pub struct Engine {
    pub models: HashMap<String, ModelEntry>,
    pub plugins: HashMap<String, PluginEntry>,
    pub pipelines: BTreeMap<String, PipelineDef>,
    pub stats: Option<Arc<dyn OutcomeStats>>,
    /// Limits where a pipeline sets none, and those of raw model calls.
    pub default_budget: BudgetLimits,
    /// Verdicts shared between the pipelines of one evaluation (never in the gateway).
    pub verdicts: Option<Arc<super::verdict_memo::VerdictMemo>>,
}

impl Engine {
    /// The pipeline a name means for a tenant: one of its own (marked, or by plain name
    /// at the top of a request, where its own names come first), else a shared one.
    fn pipeline<'a>(
        &'a self,
        catalog: Option<&'a TenantCatalog>,
        name: &str,
        top: bool,
    ) -> Option<&'a PipelineDef> {
        if let Some(own) = name.strip_prefix(OWN) {
            return catalog?.resolved(own);
        }
        match catalog.and_then(|c| c.resolved(name)).filter(|_| top) {
            Some(p) => Some(p),
            None => self.pipelines.get(name),
        }
    }

    /// Resolves what a tenant asked for (`top`) or a tree names: a pipeline (its own
    /// first), or a configured model.
    pub fn resolve(
        &self,
        tenant: &str,
        catalog: Option<&TenantCatalog>,
        target: &str,
        top: bool,
    ) -> Result<(Node, BudgetLimits, OnBudget), ExecError> {
        if let Some(p) = self.pipeline(catalog, target, top) {
            if p.admits(tenant) {
                return Ok((
                    p.node.clone(),
                    p.budget.or(self.default_budget),
                    p.on_budget,
                ));
            }
        }
        if self.models.contains_key(target) {
            let node = Node::Single(Single::model(target));
            return Ok((node, self.default_budget, OnBudget::Best));
        }
        Err(ExecError::UnknownTarget(target.into()))
    }

    /// Whether `target` is a raw model whose provider forwards request fields the
    /// gateway does not know (`providers::UnknownFields`).
    pub fn forwards_unknown_fields(&self, catalog: Option<&TenantCatalog>, target: &str) -> bool {
        self.pipeline(catalog, target, true).is_none()
            && self.models.get(target).is_some_and(|m| {
                m.provider.unknown_fields() == crate::providers::UnknownFields::Forward
            })
    }

    /// Whether a request for `target` can have `n` > 1 answers: a raw model or an
    /// unverified single-model pipeline (the upstream samples them), or a `best_of`
    /// pipeline (its top `n`). Other strategies choose one answer and have no ranking.
    pub fn answers_n(&self, catalog: Option<&TenantCatalog>, target: &str) -> bool {
        match self.pipeline(catalog, target, true) {
            None => self.models.contains_key(target),
            Some(p) => match &p.node {
                Node::Single(s) => s.verify.is_empty(),
                Node::BestOf(_) => true,
                _ => false,
            },
        }
    }

    /// Whether `target` (or a pipeline it runs) has a `decompose` node, whose composed
    /// answer is text: a request with tools is refused there, rather than have the
    /// sub-answers' tool calls dropped.
    pub fn composes(&self, catalog: Option<&TenantCatalog>, target: &str) -> bool {
        struct Composes(bool);
        impl<'a> super::strategy::Visitor<'a> for Composes {
            fn node(&mut self, node: &'a Node) {
                self.0 |= matches!(node, Node::Decompose(_));
            }
        }
        let mut pending = vec![target];
        let mut seen = HashSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(p) = self.pipeline(catalog, name, name == target) else {
                continue;
            };
            let mut composes = Composes(false);
            p.node.walk(&mut composes);
            if composes.0 {
                return true;
            }
            pending.extend(p.node.inventory().pipelines);
        }
        false
    }

    /// The models judge plugins may ask for in a request for `target`: those of the
    /// pipeline and of the pipelines it runs, with their `judge_models`, so a pipeline
    /// run inside another keeps what its judges may ask for.
    pub(crate) fn judge_models(
        &self,
        catalog: Option<&TenantCatalog>,
        target: &str,
    ) -> AllowedModels {
        let mut names: Vec<&str> = Vec::new();
        let mut pending = vec![target];
        let mut seen = HashSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(p) = self.pipeline(catalog, name, name == target) else {
                names.push(name);
                continue;
            };
            let uses = p.node.inventory();
            names.extend(uses.models);
            names.extend(p.judge_models.iter().map(String::as_str));
            pending.extend(uses.pipelines);
        }
        AllowedModels::new(names.into_iter().filter_map(|n| {
            let price = &self.models.get(n)?.price;
            Some((n.to_string(), price.input + price.output))
        }))
    }

    /// Pipelines and models a tenant may call: pipelines that admit it and its policy
    /// allows, and the raw models its policy names.
    pub fn targets_of(&self, tenant: &str, policy: &Policy) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = self
            .pipelines
            .iter()
            .filter(|(n, p)| p.admits(tenant) && policy.admits_pipeline(n))
            .map(|(n, _)| (n.clone(), "pipeline"))
            .collect();
        let mut models: Vec<_> = self
            .models
            .keys()
            .filter(|m| !self.pipelines.contains_key(*m) && policy.admits_model(m))
            .map(|m| (m.clone(), "model"))
            .collect();
        models.sort();
        out.extend(models);
        out
    }

    /// Whether `tenant` under `policy` may call `target` (what `targets_of` lists).
    pub fn may_call(&self, tenant: &str, policy: &Policy, target: &str) -> bool {
        match self.pipelines.get(target) {
            Some(p) => p.admits(tenant) && policy.admits_pipeline(target),
            None => self.models.contains_key(target) && policy.admits_model(target),
        }
    }

    pub async fn execute(self: &Arc<Self>, request: ExecRequest) -> ExecResult {
        self.execute_until(request, std::future::pending(), None)
            .await
    }

    /// Runs the request until it is answered or `cancelled` resolves (the client went
    /// away): then in-flight calls are dropped, recorded as cancelled, and the trace
    /// keeps everything done so far. With a `sink`, a pass-through answer (an
    /// unverified single model call) is streamed there as it is generated, under the
    /// same budget, pricing and trace as any other call.
    pub async fn execute_until(
        self: &Arc<Self>,
        request: ExecRequest,
        cancelled: impl std::future::Future<Output = ()>,
        sink: Option<DeltaSink>,
    ) -> ExecResult {
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let resolved = self.resolve(
            &request.tenant,
            request.catalog.as_deref(),
            &request.target,
            true,
        );
        let (node, limits, on_budget) = match resolved {
            Ok(r) => r,
            Err(e) => {
                return ExecResult {
                    answer: None,
                    trace: self.trace(
                        &request,
                        created_at,
                        None,
                        Some(&e),
                        &Budget::new(BudgetLimits::default()),
                        vec![],
                    ),
                    error: Some(e),
                    streamed: false,
                }
            }
        };
        let limits = limits.tightened_by(request.budget);
        let mut ctx = RequestCtx::new(
            Budget::with_tenant(limits, request.spend.clone()),
            request.tenant.clone(),
            request.target.clone(),
            request.sampling.clone(),
            request.catalog.clone(),
        );
        ctx.n = request.n.max(1);
        let ctx = Arc::new(ctx);
        let root = Step {
            engine: self,
            ctx: &ctx,
            task: &request.task,
            path: "root".into(),
            depth: 0,
        };
        // A panic anywhere in the tree fails this request alone, typed and traced with
        // the attempts made so far, instead of taking its task down without a trace.
        let run = std::panic::AssertUnwindSafe(node.run_root(root, sink))
            .catch_unwind()
            .map(|r| {
                r.unwrap_or_else(|panic| {
                    let message = super::error::panic_message(&*panic);
                    tracing::error!(panic = %message, "a request's pipeline panicked");
                    Err(ExecError::Internal(message))
                })
            });
        let run = async {
            match ctx.budget.remaining() {
                // The whole tree stops at the deadline; in-flight calls are dropped
                // (cancelled).
                Some(left) => match tokio::time::timeout(left, run).await {
                    Ok(r) => r,
                    Err(_) => Err(ExecError::OverBudget(BudgetError::Deadline)),
                },
                None => run.await,
            }
        };
        let result = tokio::select! {
            r = run => r,
            () = cancelled => Err(ExecError::Cancelled),
        };
        let (answer, error) = match result {
            Ok(a) => (Some(a), None),
            Err(e @ ExecError::OverBudget(_)) => match (on_budget, ctx.best()) {
                (OnBudget::Best, Some(b)) => (Some(b), Some(e)),
                _ => (None, Some(e)),
            },
            Err(e) => (None, Some(e)),
        };
        let trace = self.trace(
            &request,
            created_at,
            answer.as_ref(),
            error.as_ref(),
            &ctx.budget,
            ctx.take_attempts(),
        );
        // A budget error with a returned best answer is reported in the trace only.
        let error = if answer.is_some() { None } else { error };
        ExecResult {
            answer,
            error,
            trace,
            streamed: ctx.streamed(),
        }
    }

    fn trace(
        &self,
        request: &ExecRequest,
        created_at: i64,
        answer: Option<&Answer>,
        error: Option<&ExecError>,
        budget: &Budget,
        attempts: Vec<AttemptRecord>,
    ) -> RequestTrace {
        let outcome = match (answer, error) {
            (Some(_), Some(ExecError::OverBudget(_))) => RequestOutcome::BudgetBest,
            (Some(a), _) if a.accepted && a.verified => RequestOutcome::Accepted,
            (Some(a), _) if !a.verified => RequestOutcome::Unverified,
            (Some(_), _) => RequestOutcome::Rejected,
            (None, Some(ExecError::Cancelled)) => RequestOutcome::Cancelled,
            (None, _) => RequestOutcome::Failed,
        };
        RequestTrace {
            id: request.id.clone(),
            tenant: request.tenant.clone(),
            pipeline: request.target.clone(),
            created_at,
            latency_ms: budget.elapsed().as_secs_f64() * 1e3,
            cost_usd: attempts.iter().map(|a| a.cost_usd).sum(),
            outcome,
            model: answer.map(|a| a.model.clone()),
            score: answer.and_then(|a| a.score),
            answer: answer.map(|a| a.text.clone()),
            answer_attempt: answer.and_then(|a| a.attempt),
            answer_attempts: answer
                .filter(|a| !a.alternatives.is_empty())
                .map(|a| {
                    std::iter::once(a)
                        .chain(&a.alternatives)
                        .filter_map(|c| c.attempt)
                        .collect()
                })
                .unwrap_or_default(),
            error: error.map(|e| crate::scrub::scrub(&format!("{}: {e}", e.code()))),
            tags: request.task.tags.clone(),
            budget: Some(budget.limits),
            attempts,
        }
    }

    /// A plugin in the role a node uses it in: a shared one, or (a pinned reference) one
    /// of the tenant's own, from the request's snapshot.
    pub(crate) fn plugin<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        name: &str,
        kind: PluginKind,
    ) -> Result<&'a PluginEntry, ExecError> {
        let entry = match name.contains('@') {
            true => ctx.catalog.as_deref().and_then(|c| c.pinned(name)),
            false => self.plugins.get(name),
        }
        .ok_or_else(|| ExecError::Invalid(format!("unknown plugin `{name}`")))?;
        if entry.plugin.kind() != kind {
            return Err(ExecError::Invalid(format!(
                "plugin `{name}` is a {}, not a {kind}",
                entry.plugin.kind()
            )));
        }
        Ok(entry)
    }

    /// A plugin's own settings with a node's settings for it merged over them.
    pub(crate) fn merged(
        &self,
        entry: &PluginEntry,
        overrides: &BTreeMap<String, SettingValue>,
    ) -> PluginConfig {
        let mut c = entry.config.clone();
        c.extend(settings(overrides));
        c
    }

    pub(crate) fn expected_latency(&self, tenant: &str, model: &str) -> Duration {
        let configured = self
            .models
            .get(model)
            .map(|m| m.expected_latency)
            .unwrap_or(Duration::from_secs(1));
        match self.stats.as_ref().and_then(|s| s.latency(tenant, model)) {
            Some((timed, p50_ms)) if timed >= 5 => Duration::from_secs_f64(p50_ms / 1e3),
            _ => configured,
        }
    }
}
