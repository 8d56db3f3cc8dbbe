//! Runs a pipeline tree for one request: model calls under the request's budget,
//! verification chains, and the strategies (single, best_of, cascade, route, race,
//! decompose). Every attempt is recorded; an attempt whose future is dropped (a race
//! was won elsewhere) is recorded as cancelled with the cost of the prompt it sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::budget::{Budget, BudgetError, BudgetLimits, OnBudget};
use super::def::PipelineDef;
use super::spec::{settings, Node, PluginRef, SampleMode, VerifierRef};
use super::trace::*;
use crate::providers::{
    estimate_prompt_tokens, ChatRequest, Price, Provider, ProviderError, Sampling, Usage,
};
use crate::runtime::capability::{model, stats};
use crate::runtime::types::*;
use crate::runtime::{AllowedModels, CallContext, ModelAccess, ModelContext, Plugin, StatsSource};

/// Tokens assumed for an answer when estimating a call's cost before making it.
const DEFAULT_OUTPUT_ESTIMATE: u32 = 256;
const DEFAULT_THRESHOLD: f64 = 0.5;
const DEFAULT_MAX_DEPTH: u32 = 3;

pub struct ModelEntry {
    pub provider: Arc<dyn Provider>,
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

#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecError {
    #[error("over budget: {0}")]
    OverBudget(BudgetError),
    #[error("model `{model}` failed: {error}")]
    Provider { model: String, error: ProviderError },
    #[error("plugin `{plugin}` failed ({code}): {message}")]
    Plugin {
        plugin: String,
        code: String,
        message: String,
    },
    #[error("unknown pipeline or model `{0}`")]
    UnknownTarget(String),
    #[error("no answer: {0}")]
    NoAnswer(String),
    #[error("invalid pipeline: {0}")]
    Invalid(String),
    #[error("the client went away before an answer")]
    Cancelled,
}

impl ExecError {
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::OverBudget(BudgetError::Deadline) => "deadline_exceeded",
            ExecError::OverBudget(_) => "over_budget",
            ExecError::Provider { error, .. } => error.code(),
            ExecError::Plugin { .. } => "plugin_error",
            ExecError::UnknownTarget(_) => "model_not_found",
            ExecError::NoAnswer(_) => "no_answer",
            ExecError::Invalid(_) => "invalid_pipeline",
            ExecError::Cancelled => "client_disconnected",
        }
    }

    fn plugin(plugin: &str, e: &crate::runtime::Error) -> ExecError {
        ExecError::Plugin {
            plugin: plugin.into(),
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// The answer a node produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
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

    fn better_than(&self, other: &Answer) -> bool {
        let (a, b) = (self.rank(), other.rank());
        a.0 && !b.0 || (a.0 == b.0 && a.1 > b.1)
    }
}

/// One request to run.
#[derive(Debug, Clone)]
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
}

pub struct ExecResult {
    pub answer: Option<Answer>,
    pub error: Option<ExecError>,
    pub trace: RequestTrace,
}

/// Per-request state shared by every node of the tree.
pub struct RequestCtx {
    pub budget: Budget,
    tenant: String,
    sampling: Sampling,
    attempts: Mutex<Vec<AttemptRecord>>,
    samples: Mutex<HashMap<String, u32>>,
    best: Mutex<Option<Answer>>,
    /// What the `model` capability lets the request's judge plugins ask for.
    judge_models: Arc<AllowedModels>,
}

impl RequestCtx {
    fn next_sample(&self, model: &str) -> u32 {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let n = s.entry(model.to_string()).or_insert(0);
        *n += 1;
        *n - 1
    }

    fn push(&self, record: AttemptRecord) -> u32 {
        let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let seq = a.len() as u32;
        a.push(AttemptRecord { seq, ..record });
        seq
    }

    fn update(&self, seq: u32, f: impl FnOnce(&mut AttemptRecord)) {
        let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = a.get_mut(seq as usize) {
            f(r);
        }
    }

    fn ms(&self) -> f64 {
        self.budget.elapsed().as_secs_f64() * 1e3
    }

    /// Remembers the best accepted answer, returned if the budget runs out later.
    fn offer(&self, answer: &Answer) {
        if !answer.accepted || !answer.verified {
            return;
        }
        let mut best = self.best.lock().unwrap_or_else(|p| p.into_inner());
        if best.as_ref().is_none_or(|b| answer.better_than(b)) {
            *best = Some(answer.clone());
        }
    }

    fn call_context(&self) -> CallContext {
        CallContext {
            deadline: self.budget.remaining(),
            ..CallContext::default()
        }
    }
}

/// Marks an attempt cancelled (with the prompt's cost) if its future is dropped first.
struct InFlight<'a> {
    ctx: &'a RequestCtx,
    seq: u32,
    started: f64,
    partial_cost: f64,
    reservation: Option<super::budget::Reservation<'a>>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        reservation.settle(self.partial_cost);
        let (now, cost) = (self.ctx.ms(), self.partial_cost);
        let started = self.started;
        self.ctx.update(self.seq, |r| {
            r.outcome = AttemptOutcome::Cancelled;
            r.latency_ms = now - started;
            r.cost_usd = cost;
            r.output_tokens = 0;
        });
    }
}

/// A plugin's log lines as events in the request's span, under the `plugin` target:
/// `ARBITER_LOG=warn,plugin=debug` shows them next to the request they belong to. Off by
/// default, since a plugin chooses how much it logs (up to its log budget per call).
fn emit_logs(plugin: &str, logs: &[LogRecord]) {
    if logs.is_empty() || !tracing::enabled!(target: "plugin", tracing::Level::ERROR) {
        return;
    }
    for line in logs {
        let fields: Vec<String> = line
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let (fields, message) = (fields.join(" "), &line.message);
        match line.level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, fields, "{message}"),
        }
    }
}

/// A model's answer before verification.
#[derive(Debug, Clone)]
struct Sampled {
    text: String,
    model: String,
    seq: u32,
    label: Option<bool>,
}

/// The verification chain's combined judgement of one candidate.
#[derive(Debug, Clone)]
struct Judgement {
    accepted: bool,
    score: f64,
    /// The first verifier's verdict (the one a cross-candidate step needs).
    primary: Option<Verdict>,
}

pub struct Engine {
    pub models: HashMap<String, ModelEntry>,
    pub plugins: HashMap<String, PluginEntry>,
    pub pipelines: BTreeMap<String, PipelineDef>,
    pub stats: Option<Arc<dyn OutcomeStats>>,
}

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
    /// Resolves what a tenant asked for: one of its pipelines, or a configured model.
    pub fn resolve(
        &self,
        tenant: &str,
        target: &str,
    ) -> Result<(Node, BudgetLimits, OnBudget), ExecError> {
        if let Some(p) = self.pipelines.get(target) {
            if p.tenants.iter().any(|t| t == tenant) {
                return Ok((p.node.clone(), p.budget, p.on_budget));
            }
        }
        if self.models.contains_key(target) {
            let node = Node::Single {
                model: target.into(),
                verify: vec![],
                threshold: None,
            };
            return Ok((node, BudgetLimits::default(), OnBudget::Best));
        }
        Err(ExecError::UnknownTarget(target.into()))
    }

    /// The models judge plugins may ask for in a request for `target`: those of the
    /// pipeline and of the pipelines it runs, with their `judge_models`, so a pipeline
    /// run inside another keeps what its judges may ask for.
    fn judge_models(&self, target: &str) -> AllowedModels {
        let mut names = Vec::new();
        let mut pending = vec![target];
        let mut seen = HashSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(p) = self.pipelines.get(name) else {
                names.push(name.to_string());
                continue;
            };
            p.node.models(&mut names);
            names.extend(p.judge_models.iter().cloned());
            p.node.pipelines(&mut pending);
        }
        AllowedModels::new(names.into_iter().filter_map(|n| {
            let price = &self.models.get(&n)?.price;
            Some((n, price.input + price.output))
        }))
    }

    /// Pipelines and models a tenant may use.
    pub fn targets_of(&self, tenant: &str) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = self
            .pipelines
            .iter()
            .filter(|(_, p)| p.tenants.iter().any(|t| t == tenant))
            .map(|(n, _)| (n.clone(), "pipeline"))
            .collect();
        out.extend(self.models.keys().map(|m| (m.clone(), "model")));
        out
    }

    pub async fn execute(self: &Arc<Self>, request: ExecRequest) -> ExecResult {
        self.execute_until(request, std::future::pending()).await
    }

    /// Runs the request until it is answered or `cancelled` resolves (the client went
    /// away): then in-flight calls are dropped, recorded as cancelled, and the trace
    /// keeps everything done so far.
    pub async fn execute_until(
        self: &Arc<Self>,
        request: ExecRequest,
        cancelled: impl std::future::Future<Output = ()>,
    ) -> ExecResult {
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let resolved = self.resolve(&request.tenant, &request.target);
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
                }
            }
        };
        let limits = limits.tightened_by(request.budget);
        let ctx = Arc::new(RequestCtx {
            budget: Budget::new(limits),
            tenant: request.tenant.clone(),
            sampling: request.sampling.clone(),
            attempts: Mutex::new(Vec::new()),
            samples: Mutex::new(HashMap::new()),
            best: Mutex::new(None),
            judge_models: Arc::new(self.judge_models(&request.target)),
        });
        let run = self.run_node(&ctx, &node, &request.task, "root".into(), 0);
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
            Err(e @ ExecError::OverBudget(_)) => {
                let best = ctx.best.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match (on_budget, best) {
                    (OnBudget::Best, Some(b)) => (Some(b), Some(e)),
                    _ => (None, Some(e)),
                }
            }
            Err(e) => (None, Some(e)),
        };
        let attempts = std::mem::take(&mut *ctx.attempts.lock().unwrap_or_else(|p| p.into_inner()));
        let trace = self.trace(
            &request,
            created_at,
            answer.as_ref(),
            error.as_ref(),
            &ctx.budget,
            attempts,
        );
        // A budget error with a returned best answer is reported in the trace only.
        let error = if answer.is_some() { None } else { error };
        ExecResult {
            answer,
            error,
            trace,
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
            error: error.map(|e| format!("{}: {e}", e.code())),
            tags: request.task.tags.clone(),
            attempts,
        }
    }

    fn run_node<'a>(
        self: &'a Arc<Self>,
        ctx: &'a Arc<RequestCtx>,
        node: &'a Node,
        task: &'a Task,
        path: String,
        depth: u32,
    ) -> BoxFuture<'a, Result<Answer, ExecError>> {
        async move {
            ctx.budget.check_deadline().map_err(ExecError::OverBudget)?;
            let answer = match node {
                Node::Single {
                    model,
                    verify,
                    threshold,
                } => {
                    let s = self
                        .call_model(ctx, &path, model, task, &ctx.sampling)
                        .await?
                        .0;
                    self.judged_answer(
                        ctx,
                        &path,
                        task,
                        s,
                        verify,
                        threshold.unwrap_or(DEFAULT_THRESHOLD),
                    )
                    .await?
                }
                Node::BestOf {
                    models,
                    k,
                    verify,
                    select,
                    threshold,
                    mode,
                } => {
                    self.best_of(
                        ctx,
                        &path,
                        task,
                        models,
                        *k,
                        verify,
                        *select,
                        threshold.unwrap_or(DEFAULT_THRESHOLD),
                        *mode,
                    )
                    .await?
                }
                Node::Cascade { steps } => {
                    let mut best: Option<Answer> = None;
                    let mut last_err = None;
                    for (i, step) in steps.iter().enumerate() {
                        match self
                            .run_node(ctx, step, task, format!("{path}/cascade[{i}]"), depth)
                            .await
                        {
                            Ok(a) if a.accepted => return Ok(a),
                            Ok(a) => {
                                if best.as_ref().is_none_or(|b| a.better_than(b)) {
                                    best = Some(a);
                                }
                            }
                            // The top level applies the request's `on_budget` policy.
                            Err(e @ ExecError::OverBudget(_)) => return Err(e),
                            Err(e) => last_err = Some(e),
                        }
                    }
                    best.ok_or_else(|| {
                        last_err
                            .unwrap_or_else(|| ExecError::NoAnswer("cascade has no steps".into()))
                    })?
                }
                Node::Route {
                    router,
                    models,
                    branches,
                    verify,
                    threshold,
                } => {
                    self.route(
                        ctx,
                        &path,
                        task,
                        router,
                        models,
                        branches,
                        verify,
                        threshold.unwrap_or(DEFAULT_THRESHOLD),
                        depth,
                    )
                    .await?
                }
                Node::Race {
                    branches,
                    models,
                    k,
                    verify,
                    threshold,
                    hedge_after_ms,
                } => {
                    self.race(
                        ctx,
                        &path,
                        task,
                        branches,
                        models,
                        *k,
                        verify,
                        *threshold,
                        *hedge_after_ms,
                        depth,
                    )
                    .await?
                }
                Node::Decompose {
                    decomposer,
                    sub,
                    max_depth,
                } => {
                    self.decompose(ctx, &path, task, decomposer, sub, *max_depth, depth)
                        .await?
                }
                Node::Pipeline { name } => {
                    // The referenced pipeline runs under this request's budget.
                    let (node, _, _) = self.resolve(&ctx.tenant, name)?;
                    if path.matches(&format!("/{name}")).count() >= 4 {
                        return Err(ExecError::Invalid(format!(
                            "pipeline `{name}` refers to itself"
                        )));
                    }
                    self.run_node(ctx, &node, task, format!("{path}/{name}"), depth)
                        .await?
                }
            };
            ctx.offer(&answer);
            Ok(answer)
        }
        .boxed()
    }

    /// One model call under the budget, recorded as an attempt.
    async fn call_model(
        &self,
        ctx: &RequestCtx,
        path: &str,
        model: &str,
        task: &Task,
        sampling: &Sampling,
    ) -> Result<(Sampled, Usage), ExecError> {
        let entry = self
            .models
            .get(model)
            .ok_or_else(|| ExecError::UnknownTarget(model.into()))?;
        let sample = ctx.next_sample(model);
        let input_estimate = estimate_prompt_tokens(&task.messages);
        let estimate = entry.price.cost(Usage {
            input_tokens: input_estimate,
            output_tokens: sampling.max_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        });
        let base = AttemptRecord {
            seq: 0,
            node: path.into(),
            kind: AttemptKind::Model,
            model: model.into(),
            sample: Some(sample),
            started_ms: ctx.ms(),
            latency_ms: 0.0,
            input_tokens: input_estimate,
            output_tokens: 0,
            cost_usd: 0.0,
            outcome: AttemptOutcome::InFlight,
            verdicts: vec![],
            score: None,
            error: None,
            text: None,
            finish_reason: None,
            label: None,
        };
        let reservation = match ctx.budget.reserve(estimate) {
            Ok(r) => r,
            Err(e) => {
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
        let mut guard = InFlight {
            ctx,
            seq,
            started,
            partial_cost: entry.price.cost(Usage {
                input_tokens: input_estimate,
                output_tokens: 0,
            }),
            reservation: Some(reservation),
        };
        let request = ChatRequest {
            model: entry.upstream.clone(),
            messages: task.messages.clone(),
            sampling: sampling.clone(),
            n: 1,
            sample_index: sample,
            timeout: ctx.budget.remaining(),
        };
        let result = entry.provider.chat(&request).await;
        tracing::debug!(
            node = path,
            model,
            ms = ctx.ms() - started,
            error = result.as_ref().err().map(|e| e.code()),
            "model call"
        );
        let reservation = guard
            .reservation
            .take()
            .expect("reservation held until the call returns");
        let now = ctx.ms();
        match result {
            Ok(response) => {
                let cost = entry.price.cost(response.usage);
                reservation.settle(cost);
                let choice = response.choices.into_iter().next().unwrap_or_else(|| {
                    crate::providers::Choice {
                        text: String::new(),
                        correct: None,
                        sample: None,
                        finish_reason: None,
                    }
                });
                let usage = response.usage;
                let text = choice.text;
                ctx.update(seq, |r| {
                    r.latency_ms = now - started;
                    r.input_tokens = usage.input_tokens;
                    r.output_tokens = usage.output_tokens;
                    r.cost_usd = cost;
                    r.outcome = AttemptOutcome::Unverified;
                    r.text = Some(text.clone());
                    r.label = choice.correct;
                    r.finish_reason = choice.finish_reason;
                    if let Some(s) = choice.sample {
                        r.sample = Some(s);
                    }
                });
                Ok((
                    Sampled {
                        text,
                        model: model.into(),
                        seq,
                        label: choice.correct,
                    },
                    usage,
                ))
            }
            Err(error) => {
                // Failed calls are not billed by providers; the estimate is released.
                reservation.settle(0.0);
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
                    model: model.into(),
                    error,
                })
            }
        }
    }

    fn plugin(&self, name: &str, kind: PluginKind) -> Result<&PluginEntry, ExecError> {
        let entry = self
            .plugins
            .get(name)
            .ok_or_else(|| ExecError::Invalid(format!("unknown plugin `{name}`")))?;
        if entry.plugin.kind() != kind {
            return Err(ExecError::Invalid(format!(
                "plugin `{name}` is a {}, not a {kind}",
                entry.plugin.kind()
            )));
        }
        Ok(entry)
    }

    fn merged(
        &self,
        entry: &PluginEntry,
        overrides: &BTreeMap<String, super::spec::SettingValue>,
    ) -> PluginConfig {
        let mut c = entry.config.clone();
        c.extend(settings(overrides));
        c
    }

    fn plugin_ctx(
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
            call.model = Some(ModelContext::restricted(access, ctx.judge_models.clone()));
        }
        call
    }

    /// Runs the verification chain on one candidate and records the verdicts.
    async fn judge(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        sampled: &Sampled,
        verify: &[VerifierRef],
        threshold: f64,
    ) -> Result<Judgement, ExecError> {
        let candidate = Candidate {
            index: sampled.seq,
            model: sampled.model.clone(),
            text: sampled.text.clone(),
        };
        let calls = verify.iter().map(|v| {
            let candidate = &candidate;
            async move {
                let entry = self.plugin(&v.plugin, PluginKind::Verifier)?;
                let config = self.merged(entry, &v.config);
                let started = std::time::Instant::now();
                let result = entry
                    .plugin
                    .verify(&config, task, candidate, self.plugin_ctx(ctx, path, entry))
                    .await;
                Ok::<_, ExecError>((v, result, started.elapsed()))
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut records = Vec::new();
        let (mut weighted, mut weights) = (0.0, 0.0);
        let (mut any_accept, mut any_reject) = (false, false);
        let mut primary = None;
        for (i, r) in results.into_iter().enumerate() {
            let (v, result, wall) = r?;
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
                        error: None,
                        wall_us,
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
                        error: Some(format!("{}: {e}", e.code())),
                        wall_us,
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

    async fn judged_answer(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        sampled: Sampled,
        verify: &[VerifierRef],
        threshold: f64,
    ) -> Result<Answer, ExecError> {
        if verify.is_empty() {
            return Ok(Answer {
                text: sampled.text,
                model: sampled.model,
                accepted: true,
                verified: false,
                score: None,
                attempt: Some(sampled.seq),
                label: sampled.label,
            });
        }
        let j = self
            .judge(ctx, path, task, &sampled, verify, threshold)
            .await?;
        Ok(Answer {
            text: sampled.text,
            model: sampled.model,
            accepted: j.accepted,
            verified: true,
            score: Some(j.score),
            attempt: Some(sampled.seq),
            label: sampled.label,
        })
    }

    fn expected_latency(&self, tenant: &str, model: &str) -> Duration {
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

    #[allow(clippy::too_many_arguments)]
    async fn best_of(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        models: &[String],
        k: u32,
        verify: &[VerifierRef],
        select: bool,
        threshold: f64,
        mode: SampleMode,
    ) -> Result<Answer, ExecError> {
        if models.is_empty() || k == 0 {
            return Err(ExecError::Invalid(
                "best_of needs at least one model and k >= 1".into(),
            ));
        }
        let model_of = |i: u32| &models[i as usize % models.len()];
        // Sequential sampling stops at the first accepted answer (cheapest), but costs
        // k x latency in the worst case; a deadline that cannot afford that, or a
        // cross-candidate step that needs every candidate, switches to parallel.
        let parallel = match mode {
            SampleMode::Parallel => true,
            SampleMode::Sequential => select,
            SampleMode::Auto => {
                select
                    || ctx.budget.remaining().is_some_and(|left| {
                        let worst: Duration = (0..k)
                            .map(|i| self.expected_latency(&ctx.tenant, model_of(i)))
                            .sum();
                        left < worst
                    })
            }
        };
        let one = |i: u32| {
            let p = format!("{path}/best_of[{i}]");
            async move {
                let s = self
                    .call_model(ctx, &p, model_of(i), task, &ctx.sampling)
                    .await?
                    .0;
                let j = if verify.is_empty() {
                    None
                } else {
                    Some(self.judge(ctx, &p, task, &s, verify, threshold).await?)
                };
                Ok::<_, ExecError>((s, j))
            }
        };
        let mut done: Vec<(Sampled, Option<Judgement>)> = Vec::new();
        let mut first_error = None;
        if parallel {
            for r in futures::future::join_all((0..k).map(one)).await {
                match r {
                    Ok(x) => done.push(x),
                    Err(e @ ExecError::OverBudget(_))
                        if done.is_empty() && first_error.is_none() =>
                    {
                        first_error = Some(e)
                    }
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        } else {
            for i in 0..k {
                match one(i).await {
                    Ok((s, j)) => {
                        let stop = j.as_ref().is_some_and(|j| j.accepted) || verify.is_empty();
                        done.push((s, j));
                        if stop {
                            break;
                        }
                    }
                    Err(e @ ExecError::OverBudget(_)) => {
                        first_error = Some(e);
                        break;
                    }
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        }
        if done.is_empty() {
            return Err(
                first_error.unwrap_or_else(|| ExecError::NoAnswer("no sample succeeded".into()))
            );
        }
        let mut scores: Vec<f64> = done
            .iter()
            .map(|(_, j)| j.as_ref().map_or(0.0, |j| j.score))
            .collect();
        if select && !verify.is_empty() {
            let v = &verify[0];
            let entry = self.plugin(&v.plugin, PluginKind::Verifier)?;
            let judged: Vec<Judged> = done
                .iter()
                .map(|(s, j)| Judged {
                    candidate: Candidate {
                        index: s.seq,
                        model: s.model.clone(),
                        text: s.text.clone(),
                    },
                    verdict: j.as_ref().and_then(|j| j.primary.clone()),
                })
                .collect();
            match entry
                .plugin
                .select(
                    &self.merged(entry, &v.config),
                    task,
                    &judged,
                    self.plugin_ctx(ctx, path, entry),
                )
                .await
            {
                Ok(o) => {
                    emit_logs(&v.plugin, &o.stats.logs);
                    scores = o.value.scores
                }
                // Without the cross-candidate step, fall back to individual scores.
                Err(e) => {
                    tracing::warn!(plugin = %v.plugin, error = %e, "select failed; using individual scores")
                }
            }
        }
        let best = (0..done.len())
            .max_by(|&a, &b| {
                let key = |i: usize| (done[i].1.as_ref().is_some_and(|j| j.accepted), scores[i]);
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(b.cmp(&a))
            })
            .expect("at least one sample");
        let (s, j) = done.swap_remove(best);
        Ok(Answer {
            accepted: j.as_ref().is_none_or(|j| j.accepted),
            verified: j.is_some(),
            score: j.as_ref().map(|j| j.score),
            text: s.text,
            model: s.model,
            attempt: Some(s.seq),
            label: s.label,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn route(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        router: &PluginRef,
        models: &[String],
        branches: &BTreeMap<String, Node>,
        verify: &[VerifierRef],
        threshold: f64,
        depth: u32,
    ) -> Result<Answer, ExecError> {
        let entry = self.plugin(&router.plugin, PluginKind::Router)?;
        let option = |name: &str, model: Option<&String>| {
            let entry = model.and_then(|m| self.models.get(m));
            ModelOption {
                name: name.into(),
                input_price: entry.map_or(0.0, |e| e.price.input),
                output_price: entry.map_or(0.0, |e| e.price.output),
                stats: model.and_then(|m| self.stats.as_ref()?.query(&ctx.tenant, m, None)),
            }
        };
        let mut options: Vec<ModelOption> = models.iter().map(|m| option(m, Some(m))).collect();
        for (name, node) in branches {
            let mut first = Vec::new();
            node.models(&mut first);
            options.push(option(name, first.first()));
        }
        let decision = self
            .plugin_step(ctx, path, &router.plugin, AttemptKind::Router, async {
                entry
                    .plugin
                    .route(
                        &self.merged(entry, &router.config),
                        task,
                        &options,
                        self.plugin_ctx(ctx, path, entry),
                    )
                    .await
            })
            .await?;
        let mut best: Option<Answer> = None;
        let mut last_err = None;
        for (i, step) in decision.steps.iter().enumerate() {
            let p = format!("{path}/route[{i}]:{}", step.target);
            let min = step.min_score.unwrap_or(threshold);
            let result = if let Some(branch) = branches.get(&step.target) {
                self.run_node(ctx, branch, task, p, depth).await
            } else if models.contains(&step.target) {
                self.best_of(
                    ctx,
                    &p,
                    task,
                    std::slice::from_ref(&step.target),
                    step.samples.max(1),
                    verify,
                    false,
                    min,
                    SampleMode::Auto,
                )
                .await
            } else {
                Err(ExecError::Invalid(format!(
                    "router chose `{}`, which is not among its options",
                    step.target
                )))
            };
            match result {
                Ok(a) if a.accepted && a.score.is_none_or(|s| s >= min) => return Ok(a),
                Ok(a) => {
                    if best.as_ref().is_none_or(|b| a.better_than(b)) {
                        best = Some(a);
                    }
                }
                // The top level applies the request's `on_budget` policy.
                Err(e @ ExecError::OverBudget(_)) => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        best.ok_or_else(|| {
            last_err.unwrap_or_else(|| ExecError::NoAnswer("router chose no steps".into()))
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn race(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        branches: &[Node],
        models: &[String],
        k: u32,
        verify: &[VerifierRef],
        threshold: Option<f64>,
        hedge_after_ms: Option<u64>,
        depth: u32,
    ) -> Result<Answer, ExecError> {
        let sampled: Vec<Node>;
        let branches: &[Node] = if branches.is_empty() {
            if models.is_empty() || k == 0 {
                return Err(ExecError::Invalid(
                    "race needs branches, or models and k >= 1".into(),
                ));
            }
            sampled = (0..k as usize)
                .map(|i| Node::Single {
                    model: models[i % models.len()].clone(),
                    verify: verify.to_vec(),
                    threshold,
                })
                .collect();
            &sampled
        } else {
            branches
        };
        let hedge = hedge_after_ms.map(Duration::from_millis);
        let mut running: FuturesUnordered<_> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let p = format!("{path}/race[{i}]");
                async move {
                    if let Some(h) = hedge {
                        // Backup branches start only if nothing has won by then.
                        tokio::time::sleep(h * i as u32).await;
                    }
                    self.run_node(ctx, b, task, p, depth).await
                }
            })
            .collect();
        let mut best: Option<Answer> = None;
        let mut last_err = None;
        while let Some(result) = running.next().await {
            match result {
                // Dropping `running` cancels every branch still in flight.
                Ok(a) if a.accepted => return Ok(a),
                Ok(a) => {
                    if best.as_ref().is_none_or(|b| a.better_than(b)) {
                        best = Some(a);
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        best.ok_or_else(|| {
            last_err.unwrap_or_else(|| ExecError::NoAnswer("race has no branches".into()))
        })
    }

    /// Runs a router/decomposer call, recording it as an attempt.
    async fn plugin_step<T>(
        &self,
        ctx: &RequestCtx,
        path: &str,
        plugin: &str,
        kind: AttemptKind,
        call: impl std::future::Future<
            Output = Result<crate::runtime::Outcome<T>, crate::runtime::Error>,
        >,
    ) -> Result<T, ExecError> {
        let started = ctx.ms();
        let result = call.await;
        let now = ctx.ms();
        let (outcome, error) = match &result {
            Ok(o) => {
                emit_logs(plugin, &o.stats.logs);
                (AttemptOutcome::Accepted, None)
            }
            Err(e) => (AttemptOutcome::Failed, Some(format!("{}: {e}", e.code()))),
        };
        ctx.push(AttemptRecord {
            seq: 0,
            node: path.into(),
            kind,
            model: plugin.into(),
            sample: None,
            started_ms: started,
            latency_ms: now - started,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            outcome,
            verdicts: vec![],
            score: None,
            error,
            text: None,
            finish_reason: None,
            label: None,
        });
        result
            .map(|o| o.value)
            .map_err(|e| ExecError::plugin(plugin, &e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn decompose(
        self: &Arc<Self>,
        ctx: &Arc<RequestCtx>,
        path: &str,
        task: &Task,
        decomposer: &PluginRef,
        sub: &Node,
        max_depth: Option<u32>,
        depth: u32,
    ) -> Result<Answer, ExecError> {
        let limit = max_depth
            .or(ctx.budget.limits.max_depth)
            .unwrap_or(DEFAULT_MAX_DEPTH);
        if depth >= limit {
            // At the depth limit the task is answered directly, not split further.
            return self
                .run_node(ctx, sub, task, format!("{path}/direct"), depth + 1)
                .await;
        }
        let entry = self.plugin(&decomposer.plugin, PluginKind::Decomposer)?;
        let config = self.merged(entry, &decomposer.config);
        let plan = self
            .plugin_step(
                ctx,
                path,
                &decomposer.plugin,
                AttemptKind::Decomposer,
                async {
                    entry
                        .plugin
                        .decompose(&config, task, self.plugin_ctx(ctx, path, entry))
                        .await
                },
            )
            .await?;
        if plan.subtasks.is_empty() {
            return self
                .run_node(ctx, sub, task, format!("{path}/direct"), depth + 1)
                .await;
        }
        let mut results: HashMap<String, Answer> = HashMap::new();
        let mut started: HashSet<String> = HashSet::new();
        let mut running = FuturesUnordered::new();
        loop {
            // Start every sub-task whose dependencies are answered: independent ones run
            // in parallel.
            for st in &plan.subtasks {
                if started.contains(&st.id)
                    || !st.depends_on.iter().all(|d| results.contains_key(d))
                {
                    continue;
                }
                started.insert(st.id.clone());
                let mut prompt = st.prompt.clone();
                for d in &st.depends_on {
                    prompt = prompt.replace(&format!("{{{{{d}}}}}"), &results[d].text);
                }
                let sub_task = Task {
                    id: format!("{}/{}", task.id, st.id),
                    messages: vec![Message::user(prompt)],
                    tags: task.tags.clone(),
                    metadata: BTreeMap::new(),
                };
                let node = self.hinted(ctx, sub, st.route.as_deref(), st.verify.as_deref());
                let p = format!("{path}/{}", st.id);
                let id = st.id.clone();
                running.push(
                    async move {
                        let node = node;
                        let r = self.run_node(ctx, &node, &sub_task, p, depth + 1).await;
                        (id, r)
                    }
                    .boxed(),
                );
            }
            let Some((id, result)) = running.next().await else {
                break;
            };
            results.insert(id, result?);
        }
        let subresults: Vec<Subresult> = plan
            .subtasks
            .iter()
            .map(|st| {
                let a = &results[&st.id];
                Subresult {
                    id: st.id.clone(),
                    answer: a.text.clone(),
                    model: a.model.clone(),
                    score: a.score,
                }
            })
            .collect();
        let text = self
            .plugin_step(
                ctx,
                path,
                &decomposer.plugin,
                AttemptKind::Decomposer,
                async {
                    entry
                        .plugin
                        .compose(
                            &config,
                            task,
                            &subresults,
                            self.plugin_ctx(ctx, path, entry),
                        )
                        .await
                },
            )
            .await?;
        let answers: Vec<&Answer> = results.values().collect();
        Ok(Answer {
            text,
            model: format!("composed:{}", decomposer.plugin),
            accepted: answers.iter().all(|a| a.accepted),
            verified: answers.iter().any(|a| a.verified),
            score: answers.iter().filter_map(|a| a.score).reduce(f64::min),
            attempt: None,
            label: None,
        })
    }

    /// Applies a sub-task's hints: `route` names a pipeline of the tenant or a model;
    /// `verify` adds a verifier to a model-call step.
    fn hinted(
        &self,
        ctx: &RequestCtx,
        sub: &Node,
        route: Option<&str>,
        verify: Option<&str>,
    ) -> Node {
        let mut node = match route.and_then(|r| self.resolve(&ctx.tenant, r).ok()) {
            Some((n, _, _)) => n,
            None => sub.clone(),
        };
        if let (Some(v), Node::Single { verify: chain, .. }) = (verify, &mut node) {
            if self
                .plugins
                .get(v)
                .is_some_and(|p| p.plugin.kind() == PluginKind::Verifier)
                && !chain.iter().any(|c| c.plugin == v)
            {
                chain.push(VerifierRef {
                    plugin: v.into(),
                    config: BTreeMap::new(),
                    weight: 1.0,
                });
            }
        }
        node
    }
}
