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
use wasmtime::component::{ComponentExportIndex, Func, Instance, InstancePre, TypedFunc};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::exports::arbiter::plugin::{decomposition as wdec, routing as wroute};
use super::bindings::{self, arbiter::plugin::types as wit};
use super::cache::LoadSource;
use super::error::{Error, Result};
use super::inspect::{ComponentSummary, Grants};
use super::kept::KeptInstance;
use super::limits::Limits;
use super::state::{CallContext, CallState, LogLimitHit};
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

/// The functions a plugin kind exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Export {
    Info,
    CheckConfig,
    Verify,
    Select,
    Route,
    Decompose,
    Compose,
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Export::Info => "info",
            Export::CheckConfig => "check-config",
            Export::Verify => "verify",
            Export::Select => "select",
            Export::Route => "route",
            Export::Decompose => "decompose",
            Export::Compose => "compose",
        }
    }

    fn of(kind: PluginKind) -> &'static [Export] {
        match kind {
            PluginKind::Verifier => &[
                Export::Info,
                Export::CheckConfig,
                Export::Verify,
                Export::Select,
            ],
            PluginKind::Router => &[Export::Info, Export::CheckConfig, Export::Route],
            PluginKind::Decomposer => &[
                Export::Info,
                Export::CheckConfig,
                Export::Decompose,
                Export::Compose,
            ],
        }
    }
}

/// Parameter and result types of each export, as lowered and lifted by the host. These
/// exact types are typechecked once per plugin at load (`typecheck`), which is what
/// makes the unchecked per-call lookups in `dispatch` sound.
type Cfg<'a> = &'a [(String, String)];
type InfoSig = ((), (wit::PluginInfo,));
type CheckSig<'a> = ((Cfg<'a>,), (PluginResult<()>,));
type VerifySig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a wit::Candidate),
    (PluginResult<wit::Verdict>,),
);
type SelectSig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a [wit::Judged]),
    (PluginResult<wit::Selection>,),
);
type RouteSig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a [wroute::ModelOption]),
    (PluginResult<wroute::RouteDecision>,),
);
type DecomposeSig<'a> = ((Cfg<'a>, &'a wit::Task), (PluginResult<wdec::Plan>,));
type ComposeSig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a [wdec::Subresult]),
    (PluginResult<String>,),
);

/// Export indices resolved once at load: a call looks up only the function it needs.
struct Exports {
    indices: Vec<(Export, ComponentExportIndex)>,
}

impl Exports {
    fn resolve(pre: &InstancePre<CallState>, kind: PluginKind, interface: &str) -> Result<Exports> {
        let component = pre.component();
        let missing =
            |what: &str| Error::WrongWorld(format!("the component does not export `{what}`"));
        let iface = component
            .get_export_index(None, interface)
            .ok_or_else(|| missing(interface))?;
        let indices = Export::of(kind)
            .iter()
            .map(|e| {
                component
                    .get_export_index(Some(&iface), e.name())
                    .map(|i| (*e, i))
                    .ok_or_else(|| missing(&format!("{interface}#{}", e.name())))
            })
            .collect::<Result<_>>()?;
        Ok(Exports { indices })
    }

    fn func(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        export: Export,
    ) -> wasmtime::Result<Func> {
        let index = self
            .indices
            .iter()
            .find(|(e, _)| *e == export)
            .map(|(_, i)| i)
            .ok_or_else(|| {
                wasmtime::format_err!("plugin kind has no `{}` export", export.name())
            })?;
        instance
            .get_func(&mut *store, index)
            .ok_or_else(|| wasmtime::format_err!("export `{}` is not a function", export.name()))
    }

    /// Checks every export against the host's types (once per plugin).
    fn typecheck(&self, store: &mut Store<CallState>, instance: &Instance) -> wasmtime::Result<()> {
        for (export, index) in &self.indices {
            let s = &mut *store;
            match export {
                Export::Info => drop(instance.get_typed_func::<(), (wit::PluginInfo,)>(s, index)?),
                Export::CheckConfig => drop(
                    instance
                        .get_typed_func::<<CheckSig as Sig>::P, <CheckSig as Sig>::R>(s, index)?,
                ),
                Export::Verify => drop(
                    instance
                        .get_typed_func::<<VerifySig as Sig>::P, <VerifySig as Sig>::R>(s, index)?,
                ),
                Export::Select => drop(
                    instance
                        .get_typed_func::<<SelectSig as Sig>::P, <SelectSig as Sig>::R>(s, index)?,
                ),
                Export::Route => drop(
                    instance
                        .get_typed_func::<<RouteSig as Sig>::P, <RouteSig as Sig>::R>(s, index)?,
                ),
                Export::Decompose => drop(
                    instance.get_typed_func::<<DecomposeSig as Sig>::P, <DecomposeSig as Sig>::R>(
                        s, index,
                    )?,
                ),
                Export::Compose => drop(
                    instance.get_typed_func::<<ComposeSig as Sig>::P, <ComposeSig as Sig>::R>(
                        s, index,
                    )?,
                ),
            }
        }
        Ok(())
    }
}

/// Splits a `(params, results)` signature alias into its parts.
trait Sig {
    type P;
    type R;
}

impl<P, R> Sig for (P, R) {
    type P = P;
    type R = R;
}

enum Call {
    Info,
    CheckConfig(Vec<(String, String)>),
    Verify(Vec<(String, String)>, wit::Task, wit::Candidate),
    Select(Vec<(String, String)>, wit::Task, Vec<wit::Judged>),
    Route(Vec<(String, String)>, wit::Task, Vec<wroute::ModelOption>),
    Decompose(Vec<(String, String)>, wit::Task),
    Compose(Vec<(String, String)>, wit::Task, Vec<wdec::Subresult>),
}

type PluginResult<T> = std::result::Result<T, wit::PluginError>;

enum Reply {
    Info(wit::PluginInfo),
    Unit(PluginResult<()>),
    Verdict(PluginResult<wit::Verdict>),
    Selection(PluginResult<wit::Selection>),
    Route(PluginResult<wroute::RouteDecision>),
    Plan(PluginResult<wdec::Plan>),
    Text(PluginResult<String>),
}

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
    fn retire(self: &Arc<Self>, used: Store<CallState>, permit: OwnedSemaphorePermit) {
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
    pub(crate) async fn new(
        runtime: Arc<RuntimeInner>,
        pre: InstancePre<CallState>,
        summary: ComponentSummary,
        report: LoadReport,
        options: PluginOptions,
    ) -> Result<Plugin> {
        let interface = format!(
            "{}/{}@{}",
            bindings::CONTRACT_PACKAGE,
            summary.kind.export_interface(),
            summary.contract_version
        );
        let exports = Exports::resolve(&pre, summary.kind, &interface)?;
        let mut inner = PluginInner {
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
        let info = match inner.execute(Call::Info, CallContext::default()).await? {
            (Reply::Info(info), _) => bindings::info_from(info),
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
                Call::CheckConfig(bindings::config_to(config)),
                CallContext::default(),
            )
            .await?;
        match reply {
            Reply::Unit(r) => finish(r.map_err(bindings::failure_from), stats),
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
        let call = Call::Verify(
            bindings::config_to(config),
            bindings::task_to(task),
            bindings::candidate_to(candidate),
        );
        match self.inner.execute(call, ctx).await? {
            (Reply::Verdict(r), stats) => {
                let verdict = r.map_err(bindings::failure_from)?;
                check_score(verdict.score, "verdict score")?;
                finish(Ok(bindings::verdict_from(verdict)), stats)
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
        let call = Call::Select(
            bindings::config_to(config),
            bindings::task_to(task),
            judged.iter().map(bindings::judged_to).collect(),
        );
        match self.inner.execute(call, ctx).await? {
            (Reply::Selection(r), stats) => {
                let selection = bindings::selection_from(r.map_err(bindings::failure_from)?);
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
        let call = Call::Route(
            bindings::config_to(config),
            bindings::task_to(task),
            options.iter().map(bindings::option_to).collect(),
        );
        match self.inner.execute(call, ctx).await? {
            (Reply::Route(r), stats) => {
                let decision = bindings::decision_route_from(r.map_err(bindings::failure_from)?);
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
        let call = Call::Decompose(bindings::config_to(config), bindings::task_to(task));
        match self.inner.execute(call, ctx).await? {
            (Reply::Plan(r), stats) => {
                let plan = bindings::plan_from(r.map_err(bindings::failure_from)?);
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
        let call = Call::Compose(
            bindings::config_to(config),
            bindings::task_to(task),
            results.iter().map(bindings::subresult_to).collect(),
        );
        match self.inner.execute(call, ctx).await? {
            (Reply::Text(r), stats) => finish(r.map_err(bindings::failure_from), stats),
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

/// Bytes of text in a reply: what the guest made the host allocate.
fn reply_bytes(reply: &Reply) -> usize {
    fn err_len(e: &wit::PluginError) -> usize {
        match e {
            wit::PluginError::InvalidConfig(m)
            | wit::PluginError::InvalidInput(m)
            | wit::PluginError::Failed(m) => m.len(),
        }
    }
    fn of<T>(r: &PluginResult<T>, f: impl Fn(&T) -> usize) -> usize {
        match r {
            Ok(v) => f(v),
            Err(e) => err_len(e),
        }
    }
    match reply {
        Reply::Info(i) => {
            i.name.len()
                + i.version.len()
                + i.description.len()
                + i.config_keys
                    .iter()
                    .map(|k| {
                        k.name.len()
                            + k.description.len()
                            + k.default.as_ref().map_or(0, |d| d.len())
                    })
                    .sum::<usize>()
        }
        Reply::Unit(r) => of(r, |_| 0),
        Reply::Verdict(r) => of(r, |v| {
            v.reason.len()
                + v.details.as_ref().map_or(0, |d| d.len())
                + v.checks
                    .iter()
                    .map(|c| c.name.len() + c.message.as_ref().map_or(0, |m| m.len()))
                    .sum::<usize>()
        }),
        Reply::Selection(r) => of(r, |s| s.reason.len() + s.scores.len() * 8),
        Reply::Route(r) => of(r, |d| {
            d.reason.len() + d.steps.iter().map(|s| s.target.len() + 16).sum::<usize>()
        }),
        Reply::Plan(r) => of(r, |p| {
            p.reason.len()
                + p.subtasks
                    .iter()
                    .map(|s| {
                        s.id.len()
                            + s.prompt.len()
                            + s.depends_on.iter().map(|d| d.len()).sum::<usize>()
                            + s.route.as_ref().map_or(0, |x| x.len())
                            + s.verify.as_ref().map_or(0, |x| x.len())
                    })
                    .sum::<usize>()
        }),
        Reply::Text(r) => of(r, |s| s.len()),
    }
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

    /// Runs one call end to end; the single place deadlines, limits and error
    /// classification are applied, whatever the plugin kind.
    async fn execute(&self, call: Call, ctx: CallContext) -> Result<(Reply, CallStats)> {
        let permit = self
            .runtime
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("runtime is shutting down".into()))?;
        let deadline = ctx
            .deadline
            .map_or(self.limits().deadline, |d| d.min(self.limits().deadline));
        if deadline.is_zero() {
            // The request's budget is already spent: start nothing.
            return Err(Error::DeadlineExceeded(deadline));
        }
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
        call: Call,
        ctx: CallContext,
        deadline: Duration,
        permit: OwnedSemaphorePermit,
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

        let result = dispatch(&mut store, &instance, &self.exports, call).await;
        let reply = match result {
            Ok(reply) => reply,
            // Classify before the logs are drained: a trap's message carries stderr's tail.
            Err(e) => {
                let err = self.classify(e, &store, deadline, Stage::Call);
                self.retire(false, store, instance, permit);
                return Err(err);
            }
        };
        let fuel = self.fuel_used(&store);
        let logs = store.data().logs.take();
        let size = reply_bytes(&reply);
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
        Ok((reply, stats))
    }

    /// Disposes of a used instance: back to the warm pool if `healthy` and the plugin is
    /// warm, torn down in the background if instances are prepared, dropped here otherwise.
    fn retire(
        &self,
        healthy: bool,
        store: Store<CallState>,
        instance: Instance,
        permit: OwnedSemaphorePermit,
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
                let text = format!("{err:#}");
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

async fn dispatch(
    store: &mut Store<CallState>,
    instance: &Instance,
    exports: &Exports,
    call: Call,
) -> wasmtime::Result<Reply> {
    /// Calls `$export` with the signature `$sig` (typechecked at load, see `Exports`).
    macro_rules! invoke {
        ($export:expr, $sig:ty, $args:expr) => {{
            let func = exports.func(store, instance, $export)?;
            // SAFETY: `Exports::typecheck` checked this export against exactly `$sig`
            // when the plugin was loaded, and every instance comes from the same
            // pre-instantiated component.
            let typed =
                unsafe { TypedFunc::<<$sig as Sig>::P, <$sig as Sig>::R>::new_unchecked(func) };
            typed.call_async(&mut *store, $args).await?.0
        }};
    }
    Ok(match call {
        Call::Info => Reply::Info(invoke!(Export::Info, InfoSig, ())),
        Call::CheckConfig(c) => Reply::Unit(invoke!(Export::CheckConfig, CheckSig, (&c[..],))),
        Call::Verify(c, t, k) => {
            Reply::Verdict(invoke!(Export::Verify, VerifySig, (&c[..], &t, &k)))
        }
        Call::Select(c, t, j) => {
            Reply::Selection(invoke!(Export::Select, SelectSig, (&c[..], &t, &j[..])))
        }
        Call::Route(c, t, o) => {
            Reply::Route(invoke!(Export::Route, RouteSig, (&c[..], &t, &o[..])))
        }
        Call::Decompose(c, t) => {
            Reply::Plan(invoke!(Export::Decompose, DecomposeSig, (&c[..], &t)))
        }
        Call::Compose(c, t, r) => {
            Reply::Text(invoke!(Export::Compose, ComposeSig, (&c[..], &t, &r[..])))
        }
    })
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
