//! Calling a loaded plugin: a fresh instance per call (or a warm one for plugins that
//! declare themselves stateless), under a deadline, memory cap, log and output budgets.
//! Fresh instances are made ahead of demand and torn down after the reply (`Prepared`),
//! so a call waits for neither.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::cache::LoadSource;
use super::capability::log::LogLimitHit;
use super::capability::{CallContext, Grants};
use super::contract::{Args, Call, Exports, Reply};
use super::error::{Error, Result};
use super::inspect::ComponentSummary;
use super::kept::KeptInstance;
use super::limits::Limits;
use super::state::{CallState, MAX_RANDOM_BYTES, MAX_RESOURCES};
use super::types::*;
use super::RuntimeInner;

/// How a plugin is loaded and called.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginOptions {
    pub grants: Grants,
    pub limits: Limits,
    /// Reuse warm instances between calls if the plugin declares itself stateless.
    /// Off by default: a fresh instance per call cannot leak state between requests.
    pub warm: bool,
}

/// How a plugin was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// SHA-256 of the component bytes.
    pub digest: String,
    pub size: usize,
    pub source: LoadSource,
    pub load_time: Duration,
}

/// What one call cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallStats {
    /// Wall time of the whole call, instantiation included.
    pub wall: Duration,
    /// Time the call waited for its instance to be created: zero when one had been
    /// prepared ahead, `None` when a warm instance was reused.
    pub instantiate: Option<Duration>,
    /// Instructions executed, when the engine meters fuel.
    pub fuel: Option<u64>,
    pub logs: Vec<LogRecord>,
}

#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub value: T,
    pub stats: CallStats,
}

/// Raised from the epoch callback when a call passes its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineHit;

struct WarmInstance {
    store: Store<CallState>,
    instance: Instance,
}

/// Fresh instances made before any call needs them. Creating an instance (and tearing
/// the previous one down) is a large share of a fresh call: ~2/3 of a trivial Rust call,
/// hundreds of µs for an interpreter. A call takes a prepared instance, and after the
/// reply one background task drops the used store and makes the replacement. Every
/// instance still serves exactly one call; what moves is when the work is done, not how
/// much of it there is (a saturated host sees no gain, and makes instances inline when
/// none is ready). Prepared instances take their pool slots from the same budget as warm
/// ones, and a used store keeps its call's permit until it is gone, so the pool is never
/// oversubscribed.
struct Prepared {
    runtime: Arc<RuntimeInner>,
    pre: InstancePre<CallState>,
    limits: Limits,
    target: usize,
    state: Mutex<PreparedState>,
}

#[derive(Default)]
struct PreparedState {
    ready: Vec<WarmInstance>,
    /// Instantiations under way; counted so concurrent refills do not overshoot.
    pending: usize,
}

impl Prepared {
    fn take(&self) -> Option<WarmInstance> {
        self.state.lock().ok()?.ready.pop()
    }

    fn ready(&self) -> usize {
        self.state.lock().map(|s| s.ready.len()).unwrap_or(0)
    }

    /// After a call: drop its store (then its permit), and top the ready list up.
    fn retire(self: &Arc<Self>, used: Store<CallState>, permit: CallPermit) {
        let this = self.clone();
        tokio::spawn(async move {
            drop(used);
            drop(permit);
            this.refill().await;
        });
    }

    /// Reserves a pool slot for one more instance, if one is wanted and available.
    fn reserve(&self) -> Option<Reservation<'_>> {
        let mut state = self.state.lock().ok()?;
        if state.ready.len() + state.pending >= self.target {
            return None;
        }
        self.runtime
            .warm_budget
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()?;
        state.pending += 1;
        Some(Reservation {
            prepared: self,
            filled: false,
        })
    }

    /// A failure only ends this refill (its slot goes back): the next call instantiates
    /// inline, where the same failure reaches the caller as a typed error, and only a
    /// call that instantiated successfully triggers another refill.
    async fn refill(&self) {
        while let Some(mut slot) = self.reserve() {
            match self.instantiate().await {
                Ok(instance) => slot.fill(instance),
                Err(e) => {
                    tracing::warn!(error = %e, "preparing a plugin instance failed");
                    return;
                }
            }
        }
    }

    async fn instantiate(&self) -> wasmtime::Result<WarmInstance> {
        let _busy = self.runtime.ticker.busy();
        let due = Instant::now() + self.limits.deadline;
        let mut store = new_store(&self.runtime, &self.limits, CallContext::default(), due)
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(WarmInstance { store, instance })
    }
}

/// What a running call holds until its store is gone: a call slot and its memory cap's
/// share of `max_memory_total`.
pub(crate) struct CallPermit {
    _slot: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

/// A reserved pool slot: filled with an instance, or given back when dropped unfilled
/// (a failed instantiation, or the refill task cancelled when its tokio runtime ends).
struct Reservation<'a> {
    prepared: &'a Prepared,
    filled: bool,
}

impl Reservation<'_> {
    fn fill(&mut self, instance: WarmInstance) {
        if let Ok(mut state) = self.prepared.state.lock() {
            state.pending -= 1;
            state.ready.push(instance);
            self.filled = true;
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.filled {
            return;
        }
        if let Ok(mut state) = self.prepared.state.lock() {
            state.pending -= 1;
        }
        self.prepared
            .runtime
            .warm_budget
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        let n = self.state.lock().map(|s| s.ready.len()).unwrap_or(0);
        self.runtime.warm_budget.fetch_add(n, Ordering::Relaxed);
    }
}

/// A loaded plugin. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Arc<RuntimeInner>,
    pre: InstancePre<CallState>,
    exports: Exports,
    summary: ComponentSummary,
    info: PluginInfo,
    report: LoadReport,
    options: PluginOptions,
    warm: Option<Mutex<Vec<WarmInstance>>>,
    prepared: Option<Arc<Prepared>>,
    /// This plugin's share of the runtime's call slots (`max_calls_per_plugin`).
    own_calls: Arc<tokio::sync::Semaphore>,
}

impl Drop for PluginInner {
    fn drop(&mut self) {
        if let Some(pool) = &self.warm {
            let n = pool.lock().map(|p| p.len()).unwrap_or(0);
            self.runtime.warm_budget.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Plugin {
    /// Runs a call here, or on the runtime's call threads when it has them
    /// (`Runtime::run_calls_on`). A plugin with capabilities may call back into the
    /// caller's engine (models and their simulated latencies), so it stays here.
    async fn run(&self, call: Args, ctx: CallContext) -> Result<(Reply, CallStats)> {
        let inner = &self.inner;
        let Some(off) = inner.runtime.offload.get() else {
            return inner.execute(call, ctx).await;
        };
        if inner.options.grants != Grants::NONE {
            return inner.execute(call, ctx).await;
        }
        let core = off
            .cores
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("runtime is shutting down".into()))?;
        let (timers, inner) = (off.timers.clone(), inner.clone());
        tokio::task::spawn_blocking(move || {
            let _core = core;
            timers.block_on(inner.execute(call, ctx))
        })
        .await
        .unwrap_or_else(|e| Err(Error::Internal(format!("plugin call thread: {e}"))))
    }

    pub(crate) async fn new(
        runtime: Arc<RuntimeInner>,
        pre: InstancePre<CallState>,
        summary: ComponentSummary,
        report: LoadReport,
        options: PluginOptions,
    ) -> Result<Plugin> {
        let exports = Exports::resolve(&pre, summary.kind, &summary.contract_version)?;
        let own_calls = Arc::new(tokio::sync::Semaphore::new(runtime.per_plugin));
        let mut inner = PluginInner {
            own_calls,
            runtime,
            pre,
            exports,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                kind: summary.kind,
                description: String::new(),
                stateless: false,
                config_keys: Vec::new(),
            },
            summary,
            report,
            options,
            warm: None,
            prepared: None,
        };
        inner.typecheck().await?;
        let info = inner.exports.prepare(Call::Info);
        let info = match inner.execute(info, CallContext::default()).await? {
            (Reply::Info(info), _) => info,
            _ => unreachable!("info call returns info"),
        };
        if info.kind != inner.summary.kind {
            return Err(Error::InvalidOutput(format!(
                "info() says the plugin is a {} but it exports the {} interface",
                info.kind,
                inner.summary.kind.export_interface()
            )));
        }
        let warm = inner.options.warm
            && info.stateless
            && inner.runtime.config.warm_instances_per_plugin > 0;
        inner.warm = warm.then(|| Mutex::new(Vec::new()));
        let target = inner.runtime.config.prepared_instances_per_plugin;
        if !warm && target > 0 {
            let prepared = Arc::new(Prepared {
                runtime: inner.runtime.clone(),
                pre: inner.pre.clone(),
                limits: inner.options.limits.clone(),
                target,
                state: Mutex::new(PreparedState::default()),
            });
            let first = prepared.clone();
            tokio::spawn(async move { first.refill().await });
            inner.prepared = Some(prepared);
        }
        inner.info = info;
        Ok(Plugin {
            inner: Arc::new(inner),
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    pub fn kind(&self) -> PluginKind {
        self.inner.summary.kind
    }

    pub fn summary(&self) -> &ComponentSummary {
        &self.inner.summary
    }

    pub fn load_report(&self) -> &LoadReport {
        &self.inner.report
    }

    pub fn options(&self) -> &PluginOptions {
        &self.inner.options
    }

    /// True when calls reuse warm instances.
    pub fn is_warm(&self) -> bool {
        self.inner.warm.is_some()
    }

    /// Takes a warm instance out of the pool for good (after the calls it served), to
    /// read its state; `None` when the plugin is not warm or none is idle.
    pub fn take_warm_instance(&self) -> Option<KeptInstance> {
        let w = self.inner.warm.as_ref()?.lock().ok()?.pop()?;
        // Its pool slot goes back to the budget when the store is dropped; count it now.
        self.inner
            .runtime
            .warm_budget
            .fetch_add(1, Ordering::Relaxed);
        Some(KeptInstance {
            store: w.store,
            instance: w.instance,
            _busy: self.inner.runtime.ticker.busy(),
        })
    }

    /// Fresh instances ready for the next calls (see `RuntimeConfig::prepared_instances_per_plugin`).
    pub fn prepared_instances(&self) -> usize {
        self.inner.prepared.as_ref().map_or(0, |p| p.ready())
    }

    /// The call's arguments in the plugin's contract version, built before it waits for
    /// a permit.
    fn prepare(&self, call: Call<'_>) -> Args {
        self.inner.exports.prepare(call)
    }

    fn expect(&self, kind: PluginKind) -> Result<()> {
        if self.kind() != kind {
            return Err(Error::WrongKind {
                expected: kind,
                actual: self.kind(),
            });
        }
        Ok(())
    }

    /// Asks the plugin whether `config` is usable; pipelines call this at load time.
    pub async fn check_config(&self, config: &PluginConfig) -> Result<Outcome<()>> {
        let (reply, stats) = self
            .inner
            .execute(
                self.prepare(Call::CheckConfig(config)),
                CallContext::default(),
            )
            .await?;
        match reply {
            Reply::Unit(r) => finish(r, stats),
            _ => unreachable!(),
        }
    }

    pub async fn verify(
        &self,
        config: &PluginConfig,
        task: &Task,
        candidate: &Candidate,
        ctx: CallContext,
    ) -> Result<Outcome<Verdict>> {
        self.expect(PluginKind::Verifier)?;
        let call = self.prepare(Call::Verify(config, task, candidate));
        match self.run(call, ctx).await? {
            (Reply::Verdict(r), stats) => {
                let verdict = r?;
                check_score(verdict.score, "verdict score")?;
                finish(Ok(verdict), stats)
            }
            _ => unreachable!(),
        }
    }

    pub async fn select(
        &self,
        config: &PluginConfig,
        task: &Task,
        judged: &[Judged],
        ctx: CallContext,
    ) -> Result<Outcome<Selection>> {
        self.expect(PluginKind::Verifier)?;
        let call = self.prepare(Call::Select(config, task, judged));
        match self.run(call, ctx).await? {
            (Reply::Selection(r), stats) => {
                let selection = r?;
                if selection.scores.len() != judged.len() {
                    return Err(Error::InvalidOutput(format!(
                        "select returned {} scores for {} candidates",
                        selection.scores.len(),
                        judged.len()
                    )));
                }
                for s in &selection.scores {
                    if !s.is_finite() {
                        return Err(Error::InvalidOutput(format!("select returned score {s}")));
                    }
                }
                finish(Ok(selection), stats)
            }
            _ => unreachable!(),
        }
    }

    pub async fn route(
        &self,
        config: &PluginConfig,
        task: &Task,
        options: &[ModelOption],
        ctx: CallContext,
    ) -> Result<Outcome<RouteDecision>> {
        self.expect(PluginKind::Router)?;
        let call = self.prepare(Call::Route(config, task, options));
        match self.run(call, ctx).await? {
            (Reply::Route(r), stats) => {
                let decision = r?;
                validate_decision(&decision)?;
                finish(Ok(decision), stats)
            }
            _ => unreachable!(),
        }
    }

    pub async fn decompose(
        &self,
        config: &PluginConfig,
        task: &Task,
        ctx: CallContext,
    ) -> Result<Outcome<Plan>> {
        self.expect(PluginKind::Decomposer)?;
        let call = self.prepare(Call::Decompose(config, task));
        match self.run(call, ctx).await? {
            (Reply::Plan(r), stats) => {
                let plan = r?;
                validate_plan(&plan)?;
                finish(Ok(plan), stats)
            }
            _ => unreachable!(),
        }
    }

    pub async fn compose(
        &self,
        config: &PluginConfig,
        task: &Task,
        results: &[Subresult],
        ctx: CallContext,
    ) -> Result<Outcome<String>> {
        self.expect(PluginKind::Decomposer)?;
        let call = self.prepare(Call::Compose(config, task, results));
        match self.run(call, ctx).await? {
            (Reply::Text(r), stats) => finish(r, stats),
            _ => unreachable!(),
        }
    }
}

fn finish<T>(value: std::result::Result<T, PluginFailure>, stats: CallStats) -> Result<Outcome<T>> {
    Ok(Outcome {
        value: value?,
        stats,
    })
}

fn check_score(score: f64, what: &str) -> Result<()> {
    if !(0.0..=1.0).contains(&score) {
        return Err(Error::InvalidOutput(format!(
            "{what} {score} is outside [0, 1]"
        )));
    }
    Ok(())
}

/// Steps one route decision may hold, and samples one step may ask for. Every sample is
/// a paid model call and steps run one after another: a router asking for millions
/// (`samples` is a u32) is broken or hostile, and the host would hold a future per
/// sample before any budget refused the calls.
pub const MAX_ROUTE_STEPS: usize = 32;
pub const MAX_SAMPLES: u32 = 128;

fn validate_decision(decision: &RouteDecision) -> Result<()> {
    if decision.steps.is_empty() {
        return Err(Error::InvalidOutput("route decision has no steps".into()));
    }
    if decision.steps.len() > MAX_ROUTE_STEPS {
        return Err(Error::InvalidOutput(format!(
            "a route decision of {} steps exceeds the limit of {MAX_ROUTE_STEPS}",
            decision.steps.len()
        )));
    }
    for step in &decision.steps {
        if !(1..=MAX_SAMPLES).contains(&step.samples) {
            return Err(Error::InvalidOutput(format!(
                "route step `{}` asks for {} samples; 1 to {MAX_SAMPLES} are allowed",
                step.target, step.samples
            )));
        }
        if let Some(m) = step.min_score {
            check_score(m, "min-score")?;
        }
    }
    Ok(())
}

/// Sub-tasks one plan may hold. Each is at least one model call, and a plan is checked
/// and scheduled by the host as a whole: a plugin returning thousands (the output cap
/// allows a few hundred thousand tiny ones) is broken or hostile, not decomposing.
pub const MAX_SUBTASKS: usize = 256;

/// A plan must be a DAG over unique ids with known dependencies, and not too large.
/// Checked in time linear in its size, since the plugin chose that size.
fn validate_plan(plan: &Plan) -> Result<()> {
    let n = plan.subtasks.len();
    if n > MAX_SUBTASKS {
        return Err(Error::InvalidOutput(format!(
            "a plan of {n} sub-tasks exceeds the limit of {MAX_SUBTASKS}"
        )));
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, s) in plan.subtasks.iter().enumerate() {
        if s.id.is_empty() || index.insert(s.id.as_str(), i).is_some() {
            return Err(Error::InvalidOutput(format!(
                "sub-task id `{}` is empty or repeated",
                s.id
            )));
        }
    }
    // Kahn's algorithm: what is never freed of its dependencies sits on a cycle.
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in plan.subtasks.iter().enumerate() {
        for d in &s.depends_on {
            let Some(&j) = index.get(d.as_str()) else {
                return Err(Error::InvalidOutput(format!(
                    "sub-task `{}` depends on unknown `{d}`",
                    s.id
                )));
            };
            waiting_on[i] += 1;
            dependents[j].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
    let mut done = 0;
    while let Some(j) = ready.pop() {
        done += 1;
        for &i in &dependents[j] {
            waiting_on[i] -= 1;
            if waiting_on[i] == 0 {
                ready.push(i);
            }
        }
    }
    if done != n {
        return Err(Error::InvalidOutput(
            "sub-task dependencies form a cycle".into(),
        ));
    }
    Ok(())
}

impl PluginInner {
    fn limits(&self) -> &Limits {
        &self.options.limits
    }

    /// Typechecks the exports on a throwaway instance before any call uses them.
    async fn typecheck(&self) -> Result<()> {
        let _busy = self.runtime.ticker.busy();
        let due = Instant::now() + self.limits().deadline;
        let mut store = new_store(&self.runtime, self.limits(), CallContext::default(), due)?;
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => {
                return Err(self.classify(e, &store, self.limits().deadline, Stage::Instantiate))
            }
        };
        self.exports.typecheck(&mut store, &instance).map_err(|e| {
            Error::WrongWorld(format!(
                "the {} interface does not match the contract's types: {e:#}",
                self.summary.kind.export_interface()
            ))
        })
    }

    /// MiB of the runtime's memory total one call claims: its memory cap, rounded up (a
    /// cap above the total claims all of it, so such a call runs alone).
    fn memory_mib(&self) -> u32 {
        let mib = self.limits().memory_bytes.div_ceil(1 << 20);
        (mib.clamp(1, u32::MAX as usize) as u32).min(self.runtime.memory_total_mib)
    }

    /// Runs one call end to end; the single place deadlines, limits and error
    /// classification are applied, whatever the plugin kind.
    async fn execute(&self, call: Args, ctx: CallContext) -> Result<(Reply, CallStats)> {
        let deadline = ctx
            .deadline
            .map_or(self.limits().deadline, |d| d.min(self.limits().deadline));
        if deadline.is_zero() {
            // The request's budget is already spent: start nothing.
            return Err(Error::DeadlineExceeded(deadline));
        }
        // This plugin's slot first, then the runtime's: a plugin at its share waits on
        // its own, holding none of the slots other plugins need. A call waits as long as
        // its caller can afford (the request's remaining budget), not longer.
        let memory_mib = self.memory_mib();
        let slots = async {
            let own = self.own_calls.clone().acquire_owned().await?;
            let slot = self.runtime.calls.clone().acquire_owned().await?;
            let memory = self
                .runtime
                .memory
                .clone()
                .acquire_many_owned(memory_mib)
                .await?;
            Ok::<_, tokio::sync::AcquireError>((
                own,
                CallPermit {
                    _slot: slot,
                    _memory: memory,
                },
            ))
        };
        let waited = match ctx.deadline {
            Some(budget) => tokio::time::timeout(budget, slots).await.ok(),
            None => Some(slots.await),
        };
        let (_own, permit) = match waited {
            Some(Ok(permits)) => permits,
            Some(Err(_)) => return Err(Error::Internal("runtime is shutting down".into())),
            None => {
                return Err(Error::Overloaded(format!(
                    "no call slot free within the caller's budget (at most {} calls of one \
                     plugin at once, and memory caps of at most {} MiB across running calls)",
                    self.runtime.per_plugin, self.runtime.memory_total_mib
                )))
            }
        };
        // The epoch callback stops guest code at the deadline; this outer timeout also
        // stops a call blocked in a host import (a slow model), a little later.
        let grace = Duration::from_millis(20) + deadline / 10;
        let run = self.execute_inner(call, ctx, deadline, permit);
        match tokio::time::timeout(deadline + grace, run).await {
            Ok(result) => result,
            Err(_) => Err(Error::DeadlineExceeded(deadline)),
        }
    }

    async fn execute_inner(
        &self,
        call: Args,
        ctx: CallContext,
        deadline: Duration,
        permit: CallPermit,
    ) -> Result<(Reply, CallStats)> {
        let _busy = self.runtime.ticker.busy();
        let started = Instant::now();
        let due = started + deadline;
        let warm = self.warm.as_ref().and_then(|p| p.lock().ok()?.pop());
        let reused = warm.is_some();
        // A prepared instance was never called: nothing in it came from a request.
        let kept = warm.or_else(|| self.prepared.as_ref()?.take());
        let (mut store, instance, instantiate) = match kept {
            Some(w) => {
                // Its pool slot goes back to the budget (the call's permit covers it now).
                self.runtime.warm_budget.fetch_add(1, Ordering::Relaxed);
                let mut store = w.store;
                let state = store.data_mut();
                state.ctx = ctx;
                state.limiter.memory_refused = None;
                state.limiter.table_refused = None;
                arm(
                    &mut store,
                    due,
                    self.limits(),
                    self.runtime.config.profile.fuel,
                )?;
                (store, w.instance, (!reused).then_some(Duration::ZERO))
            }
            None => {
                let mut store = new_store(&self.runtime, self.limits(), ctx, due)?;
                let instance = match self.pre.instantiate_async(&mut store).await {
                    Ok(i) => i,
                    Err(e) => return Err(self.classify(e, &store, deadline, Stage::Instantiate)),
                };
                (store, instance, Some(started.elapsed()))
            }
        };

        let result = self.exports.call(&mut store, &instance, call).await;
        let returned = match result {
            Ok(returned) => returned,
            // Classify before the logs are drained: a trap's message carries stderr's tail.
            Err(e) => {
                let err = self.classify(e, &store, deadline, Stage::Call);
                self.retire(false, store, instance, permit);
                return Err(err);
            }
        };
        let fuel = self.fuel_used(&store);
        let logs = store.data().logs.take();
        let size = returned.bytes();
        if size > self.limits().output_bytes {
            self.retire(false, store, instance, permit);
            return Err(Error::OutputTooLarge {
                size,
                limit: self.limits().output_bytes,
            });
        }
        let stats = CallStats {
            wall: started.elapsed(),
            instantiate,
            fuel,
            logs,
        };
        self.retire(true, store, instance, permit);
        Ok((returned.into_reply(), stats))
    }

    /// Disposes of a used instance: back to the warm pool if `healthy` and the plugin is
    /// warm, torn down in the background if instances are prepared, dropped here otherwise.
    fn retire(
        &self,
        healthy: bool,
        store: Store<CallState>,
        instance: Instance,
        permit: CallPermit,
    ) {
        if self.warm.is_some() {
            if healthy {
                self.return_warm(store, instance);
            }
            return;
        }
        match &self.prepared {
            Some(p) => p.retire(store, permit),
            None => drop((store, permit)),
        }
    }

    fn fuel_used(&self, store: &Store<CallState>) -> Option<u64> {
        if !self.runtime.config.profile.fuel {
            return None;
        }
        store
            .get_fuel()
            .ok()
            .map(|left| self.limits().fuel.saturating_sub(left))
    }

    fn return_warm(&self, store: Store<CallState>, instance: Instance) {
        let Some(pool) = &self.warm else { return };
        let Ok(mut pool) = pool.lock() else { return };
        if pool.len() >= self.runtime.config.warm_instances_per_plugin {
            return;
        }
        // Take a slot from the runtime-wide budget so warm instances never starve the
        // pooling allocator of slots for fresh calls.
        let budget = &self.runtime.warm_budget;
        if budget
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            pool.push(WarmInstance { store, instance });
        }
    }

    /// Turns whatever stopped a call into the specific error a user can act on.
    fn classify(
        &self,
        err: wasmtime::Error,
        store: &Store<CallState>,
        deadline: Duration,
        stage: Stage,
    ) -> Error {
        let state = store.data();
        let backtrace = err
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(|b| b.to_string());
        if err.downcast_ref::<DeadlineHit>().is_some() {
            return Error::DeadlineExceeded(deadline);
        }
        if err.downcast_ref::<LogLimitHit>().is_some() || state.logs.exceeded() {
            return Error::LogLimit {
                limit: self.limits().log_bytes,
            };
        }
        if let Some(requested) = state.limiter.memory_refused {
            return Error::MemoryLimit {
                limit: state.limiter.memory_limit(),
                requested,
            };
        }
        if let Some(requested) = state.limiter.table_refused {
            return Error::ResourceLimit(format!(
                "a table needed {requested} elements; the limit is {}",
                self.limits().table_elements
            ));
        }
        if let Some(wasmtime::component::ResourceTableError::Full) = err.downcast_ref() {
            return Error::ResourceLimit(format!(
                "the plugin held more than {MAX_RESOURCES} WASI handles at once"
            ));
        }
        let text = format!("{err:#}");
        if text.contains("requested len") && text.contains("exceeds limit") {
            // wasmtime-wasi refuses an oversized `get-random-bytes` with a bare message.
            return Error::ResourceLimit(format!(
                "the plugin asked for more than {MAX_RANDOM_BYTES} random bytes in one call"
            ));
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => Error::StackOverflow { backtrace },
            Some(Trap::MemoryOutOfBounds) if runaway_recursion(&err) => {
                Error::StackOverflow { backtrace }
            }
            Some(Trap::OutOfFuel) => Error::FuelExhausted(self.limits().fuel),
            Some(Trap::Interrupt) => Error::DeadlineExceeded(deadline),
            Some(trap) => {
                let mut message = trap.to_string();
                if let Some(tail) = state.logs.stderr_tail(20) {
                    message.push_str("; plugin stderr:\n");
                    message.push_str(&tail);
                }
                Error::Trap { message, backtrace }
            }
            None => {
                if text.contains("resource limit exceeded") || text.contains("instance limit") {
                    Error::ResourceLimit(text)
                } else if stage == Stage::Call && backtrace.is_none() {
                    // Raised by the host outside any guest frame: lifting the guest's
                    // values (or lowering into memory it handed out) broke the canonical
                    // ABI: a pointer out of bounds or misaligned, invalid UTF-8, an
                    // unknown discriminant.
                    Error::InvalidOutput(text)
                } else {
                    Error::Trap {
                        message: text,
                        backtrace,
                    }
                }
            }
        }
    }
}

/// What a failed wasmtime operation was doing, for [`PluginInner::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Instantiate,
    /// The export call, including moving its arguments and result across the boundary.
    Call,
}

/// Languages compiled to wasm keep a shadow stack in linear memory; overflowing it shows
/// up as an out-of-bounds access with a deep backtrace of one function calling itself.
/// Report that as what it is.
fn runaway_recursion(err: &wasmtime::Error) -> bool {
    let Some(bt) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return false;
    };
    let frames = bt.frames();
    if frames.len() < 48 {
        return false;
    }
    let top: HashSet<u32> = frames.iter().take(32).map(|f| f.func_index()).collect();
    top.len() <= 3
}

/// A store for one instance: the call's state and memory limiter, deadline and fuel armed.
fn new_store(
    runtime: &RuntimeInner,
    limits: &Limits,
    ctx: CallContext,
    due: Instant,
) -> Result<Store<CallState>> {
    let mut store = Store::new(&runtime.engine, CallState::new(limits, ctx));
    store.limiter(|s| &mut s.limiter);
    arm(&mut store, due, limits, runtime.config.profile.fuel)?;
    Ok(store)
}

/// Sets the deadline (epoch callback: yield each tick, fail once due) and the fuel budget.
/// Nothing here may construct an error on the success path: with `RUST_BACKTRACE` set,
/// every `wasmtime::Error` captures a native backtrace (tens of microseconds).
fn arm(store: &mut Store<CallState>, due: Instant, limits: &Limits, fuel: bool) -> Result<()> {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= due {
            Err(wasmtime::Error::new(DeadlineHit))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    if fuel {
        store
            .set_fuel(limits.fuel)
            .map_err(|e| Error::Internal(format!("set_fuel: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, deps: &[&str]) -> Subtask {
        Subtask {
            id: id.into(),
            prompt: "p".into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            route: None,
            verify: None,
        }
    }

    #[test]
    fn plans_must_be_dags() {
        let ok = Plan {
            subtasks: vec![sub("a", &[]), sub("b", &["a"]), sub("c", &["a", "b"])],
            reason: String::new(),
        };
        assert!(validate_plan(&ok).is_ok());
        let cycle = Plan {
            subtasks: vec![sub("a", &["b"]), sub("b", &["a"])],
            reason: String::new(),
        };
        assert!(
            matches!(validate_plan(&cycle), Err(Error::InvalidOutput(m)) if m.contains("cycle"))
        );
        let unknown = Plan {
            subtasks: vec![sub("a", &["zz"])],
            reason: String::new(),
        };
        assert!(
            matches!(validate_plan(&unknown), Err(Error::InvalidOutput(m)) if m.contains("unknown"))
        );
        let dup = Plan {
            subtasks: vec![sub("a", &[]), sub("a", &[])],
            reason: String::new(),
        };
        assert!(validate_plan(&dup).is_err());
        // A dependency listed twice is one edge twice, not a cycle.
        let twice = Plan {
            subtasks: vec![sub("a", &[]), sub("b", &["a", "a"])],
            reason: String::new(),
        };
        assert!(validate_plan(&twice).is_ok());
        let self_loop = Plan {
            subtasks: vec![sub("a", &[]), sub("b", &["b"])],
            reason: String::new(),
        };
        assert!(validate_plan(&self_loop).is_err());
    }

    #[test]
    fn route_decisions_are_bounded() {
        let step = |samples: u32| RouteStep {
            target: "m".into(),
            samples,
            min_score: None,
        };
        let decision = |steps: Vec<RouteStep>| RouteDecision {
            steps,
            reason: String::new(),
        };
        assert!(validate_decision(&decision(vec![step(1), step(MAX_SAMPLES)])).is_ok());
        for (bad, needle) in [
            (decision(vec![]), "no steps"),
            (decision(vec![step(0)]), "0 samples"),
            (decision(vec![step(MAX_SAMPLES + 1)]), "129 samples"),
            (decision(vec![step(u32::MAX)]), "4294967295 samples"),
            (
                decision((0..=MAX_ROUTE_STEPS).map(|_| step(1)).collect()),
                "limit of 32",
            ),
        ] {
            assert!(
                matches!(validate_decision(&bad), Err(Error::InvalidOutput(ref m)) if m.contains(needle)),
                "{needle}: {:?}",
                validate_decision(&bad)
            );
        }
    }

    /// The largest plan allowed is a chain (the worst case for scheduling), one more is
    /// refused before any of it is examined.
    #[test]
    fn plans_are_bounded() {
        let chain = |n: usize| Plan {
            subtasks: (0..n)
                .map(|i| {
                    let mut s = sub(&format!("s{i}"), &[]);
                    if i > 0 {
                        s.depends_on.push(format!("s{}", i - 1));
                    }
                    s
                })
                .collect(),
            reason: String::new(),
        };
        assert!(validate_plan(&chain(MAX_SUBTASKS)).is_ok());
        assert!(
            matches!(validate_plan(&chain(MAX_SUBTASKS + 1)), Err(Error::InvalidOutput(m)) if m.contains("limit of 256"))
        );
    }

    #[test]
    fn scores_are_bounded() {
        assert!(check_score(0.0, "s").is_ok());
        assert!(check_score(1.0, "s").is_ok());
        assert!(check_score(1.5, "s").is_err());
        assert!(check_score(f64::NAN, "s").is_err());
    }
}
