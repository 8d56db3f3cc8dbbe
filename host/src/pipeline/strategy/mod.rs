//! The strategies a pipeline tree is built from, one file each, behind one trait.
//! Adding a strategy is its file plus one line in `strategies!` below, which makes it a
//! `Node` variant (its TOML `type`) and dispatches to it.

mod best_of;
mod cascade;
mod decompose;
mod pipeline;
mod race;
mod route;
mod single;

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::ControlFlow;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};

pub use best_of::BestOf;
pub use cascade::Cascade;
pub use decompose::Decompose;
pub use pipeline::PipelineRef;
pub use race::Race;
pub use route::Route;
pub use single::Single;

use super::context::Step;
use super::error::ExecError;
use super::plugin_logs::emit_logs;
use super::request::{Answer, DeltaSink};
use super::spec::{SettingValue, VerifierRef};
use super::trace::{AttemptKind, AttemptOutcome, AttemptRecord};
use crate::runtime::types::PluginKind;

/// Combined verifier score an answer needs to be accepted, unless a node sets one.
pub(crate) const DEFAULT_THRESHOLD: f64 = 0.5;

/// One kind of node of a pipeline tree: its settings are the struct implementing this.
pub trait Strategy {
    /// Structural mistakes the engine would otherwise meet at the first request, in
    /// this node alone (a walk of the tree checks its children).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Tells `visitor` what this node names itself: models, plugins, pipelines.
    fn uses<'a>(&'a self, _visitor: &mut dyn Visitor<'a>) {}

    /// The nodes this one runs.
    fn children(&self) -> Vec<&Node> {
        Vec::new()
    }

    /// Answers the step's task.
    fn run<'a>(&'a self, at: Step<'a>) -> impl Future<Output = Result<Answer, ExecError>> + Send;
}

macro_rules! strategies {
    ($($(#[$doc:meta])* $variant:ident($strategy:ty),)+) => {
        /// A pipeline tree, as configured: `type` names the strategy of each node.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum Node {
            $($(#[$doc])* $variant($strategy),)+
        }

        impl Node {
            fn strategy_check(&self) -> Result<(), String> {
                match self {
                    $(Node::$variant(s) => s.check(),)+
                }
            }

            fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
                match self {
                    $(Node::$variant(s) => s.uses(visitor),)+
                }
            }

            /// The nodes this one runs.
            pub fn children(&self) -> Vec<&Node> {
                match self {
                    $(Node::$variant(s) => s.children(),)+
                }
            }

            fn dispatch<'a>(&'a self, at: Step<'a>) -> BoxFuture<'a, Result<Answer, ExecError>> {
                match self {
                    $(Node::$variant(s) => s.run(at).boxed(),)+
                }
            }
        }
    };
}

strategies! {
    /// One model call, optionally verified.
    Single(Single),
    /// K samples, each verified; the best is chosen.
    BestOf(BestOf),
    /// Steps in order; escalate while the step's answer is not accepted.
    Cascade(Cascade),
    /// A router plugin chooses which models or branches to try.
    Route(Route),
    /// Branches in parallel; the first accepted answer wins.
    Race(Race),
    /// A decomposer plugin splits the task; the parts are answered and composed.
    Decompose(Decompose),
    /// Another pipeline of the same tenant, by name.
    Pipeline(PipelineRef),
}

/// What a walk of the tree sees, node by node in pre-order: each node, then what it
/// names itself.
pub trait Visitor<'a> {
    fn node(&mut self, _node: &'a Node) {}
    fn model(&mut self, _model: &'a str) {}
    fn plugin(&mut self, _plugin: PluginUse<'a>) {}
    fn pipeline(&mut self, _name: &'a str) {}
}

/// A plugin as a node uses it: in which role, with which settings for this use.
#[derive(Debug, Clone, Copy)]
pub struct PluginUse<'a> {
    pub name: &'a str,
    pub kind: PluginKind,
    pub config: &'a BTreeMap<String, SettingValue>,
}

/// Everything a tree uses, in the order a walk meets it.
#[derive(Debug, Default)]
pub struct Inventory<'a> {
    pub models: Vec<&'a str>,
    pub plugins: Vec<PluginUse<'a>>,
    pub pipelines: Vec<&'a str>,
    /// The first structural mistake (`Node::check`).
    pub problem: Option<String>,
}

impl<'a> Visitor<'a> for Inventory<'a> {
    fn node(&mut self, node: &'a Node) {
        if self.problem.is_none() {
            self.problem = node.strategy_check().err();
        }
    }
    fn model(&mut self, model: &'a str) {
        self.models.push(model);
    }
    fn plugin(&mut self, plugin: PluginUse<'a>) {
        self.plugins.push(plugin);
    }
    fn pipeline(&mut self, name: &'a str) {
        self.pipelines.push(name);
    }
}

/// The verifiers of a chain, as plugin uses.
pub(crate) fn verifier_uses<'a>(verify: &'a [VerifierRef], visitor: &mut dyn Visitor<'a>) {
    for v in verify {
        visitor.plugin(PluginUse {
            name: &v.plugin,
            kind: PluginKind::Verifier,
            config: &v.config,
        });
    }
}

impl Node {
    /// Visits this node and, depth first, every node below it.
    pub fn walk<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        visitor.node(self);
        self.uses(visitor);
        for child in self.children() {
            child.walk(visitor);
        }
    }

    /// Everything the tree uses, and its first structural mistake.
    pub fn inventory(&self) -> Inventory<'_> {
        let mut inventory = Inventory::default();
        self.walk(&mut inventory);
        inventory
    }

    /// Structural mistakes the engine would otherwise meet at the first request: empty
    /// strategies, no samples, thresholds and weights that are not scores.
    pub fn check(&self) -> Result<(), String> {
        self.inventory().problem.map_or(Ok(()), Err)
    }

    /// The first model the tree names.
    pub fn first_model(&self) -> Option<&str> {
        struct First<'a>(Option<&'a str>);
        impl<'a> Visitor<'a> for First<'a> {
            fn model(&mut self, model: &'a str) {
                self.0 = self.0.or(Some(model));
            }
        }
        let mut first = First(None);
        self.walk(&mut first);
        first.0
    }

    /// Runs this node: nothing starts after the deadline, and an accepted answer is kept
    /// as the request's best so far.
    pub(crate) fn run<'a>(&'a self, at: Step<'a>) -> BoxFuture<'a, Result<Answer, ExecError>> {
        async move {
            at.ctx
                .budget
                .check_deadline()
                .map_err(ExecError::OverBudget)?;
            let ctx = at.ctx;
            let answer = self.dispatch(at).await?;
            ctx.offer(&answer);
            Ok(answer)
        }
        .boxed()
    }

    /// Runs the tree at the root of a request. A pass-through (an unverified single
    /// model call) streams its answer to `sink`, if given, as it is generated.
    pub(crate) async fn run_root(
        &self,
        at: Step<'_>,
        sink: Option<DeltaSink>,
    ) -> Result<Answer, ExecError> {
        match (self, sink) {
            (Node::Single(single), Some(sink)) if single.verify.is_empty() => {
                at.ctx
                    .budget
                    .check_deadline()
                    .map_err(ExecError::OverBudget)?;
                single.stream(at, sink).await
            }
            (_, sink) => {
                // The answer is streamed whole at the end, once chosen.
                drop(sink);
                self.run(at).await
            }
        }
    }
}

/// The best answer so far and the last error, for strategies that try options until
/// one is good enough.
#[derive(Default)]
pub(crate) struct BestSoFar {
    best: Option<Answer>,
    last_err: Option<ExecError>,
}

impl BestSoFar {
    /// Takes one option's result. `Break` holds the strategy's result when it is final:
    /// an answer `good` accepts, or a budget error when `budget_stops` (the top level
    /// then applies the request's `on_budget` policy).
    pub(crate) fn take(
        &mut self,
        result: Result<Answer, ExecError>,
        good: impl FnOnce(&Answer) -> bool,
        budget_stops: bool,
    ) -> ControlFlow<Result<Answer, ExecError>> {
        match result {
            Ok(a) if good(&a) => return ControlFlow::Break(Ok(a)),
            Ok(a) => {
                if self.best.as_ref().is_none_or(|b| a.better_than(b)) {
                    self.best = Some(a);
                }
            }
            Err(e @ ExecError::OverBudget(_)) if budget_stops => return ControlFlow::Break(Err(e)),
            Err(e) => self.last_err = Some(e),
        }
        ControlFlow::Continue(())
    }

    /// No option was good enough: the best answer, else the last error, else `nothing`.
    pub(crate) fn finish(self, nothing: &str) -> Result<Answer, ExecError> {
        self.best.ok_or_else(|| {
            self.last_err
                .unwrap_or_else(|| ExecError::NoAnswer(nothing.into()))
        })
    }
}

impl Step<'_> {
    /// Runs a router/decomposer call, recording it as an attempt.
    pub(crate) async fn plugin_step<T>(
        &self,
        plugin: &str,
        kind: AttemptKind,
        call: impl Future<Output = Result<crate::runtime::Outcome<T>, crate::runtime::Error>>,
    ) -> Result<T, ExecError> {
        let operation = match kind {
            AttemptKind::Router => "route",
            AttemptKind::Decomposer => "decompose",
            AttemptKind::Model => "call",
        };
        let span = tracing::info_span!(
            "plugin call",
            otel.name = format!("{operation} {plugin}"),
            otel.status_code = tracing::field::Empty,
            arbiter.plugin.name = plugin,
            arbiter.node = %self.path,
            error.type = tracing::field::Empty,
        );
        let started = self.ctx.ms();
        let result = tracing::Instrument::instrument(call, span.clone()).await;
        let now = self.ctx.ms();
        let (outcome, error) = match &result {
            Ok(o) => {
                emit_logs(plugin, &o.stats.logs);
                (AttemptOutcome::Accepted, None)
            }
            Err(e) => {
                span.record("error.type", e.code())
                    .record("otel.status_code", "ERROR");
                (AttemptOutcome::Failed, Some(format!("{}: {e}", e.code())))
            }
        };
        self.ctx.push(AttemptRecord {
            latency_ms: now - started,
            outcome,
            error,
            ..AttemptRecord::new(&self.path, kind, plugin, started)
        });
        result
            .map(|o| o.value)
            .map_err(|e| ExecError::plugin(plugin, &e))
    }
}
