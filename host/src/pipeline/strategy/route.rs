//! `route`: a router plugin chooses which models (or named branches) to try, in what
//! order, with how many samples.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::best_of::Draw;
use super::{verifier_uses, BestSoFar, Node, PluginUse, Strategy, Visitor, DEFAULT_THRESHOLD};
use crate::pipeline::context::Step;
use crate::pipeline::error::ExecError;
use crate::pipeline::request::Answer;
use crate::pipeline::spec::{check_threshold, check_verifiers, PluginRef, SampleMode, VerifierRef};
use crate::pipeline::trace::AttemptKind;
use crate::runtime::types::{ModelOption, PluginKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub router: PluginRef,
    /// Models the router may choose from.
    #[serde(default)]
    pub models: Vec<String>,
    /// Named sub-pipelines the router may choose from.
    #[serde(default)]
    pub branches: BTreeMap<String, Node>,
    #[serde(default)]
    pub verify: Vec<VerifierRef>,
    #[serde(default)]
    pub threshold: Option<f64>,
}

impl Strategy for Route {
    fn check(&self) -> Result<(), String> {
        if self.models.is_empty() && self.branches.is_empty() {
            return Err("route has neither models nor branches to choose from".into());
        }
        check_verifiers(&self.verify)?;
        check_threshold(self.threshold)
    }

    fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        visitor.plugin(PluginUse {
            name: &self.router.plugin,
            kind: PluginKind::Router,
            config: &self.router.config,
        });
        verifier_uses(&self.verify, visitor);
        for m in &self.models {
            visitor.model(m);
        }
    }

    fn children(&self) -> Vec<&Node> {
        self.branches.values().collect()
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        let (engine, ctx, path) = (at.engine, at.ctx, at.path.as_str());
        let threshold = self.threshold.unwrap_or(DEFAULT_THRESHOLD);
        let entry = engine.plugin(ctx, &self.router.plugin, PluginKind::Router)?;
        let option = |name: &str, model: Option<&str>| {
            let entry = model.and_then(|m| engine.models.get(m));
            ModelOption {
                name: name.into(),
                input_price: entry.map_or(0.0, |e| e.price.input),
                output_price: entry.map_or(0.0, |e| e.price.output),
                stats: model.and_then(|m| engine.stats.as_ref()?.query(&ctx.tenant, m, None)),
            }
        };
        let mut options: Vec<ModelOption> =
            self.models.iter().map(|m| option(m, Some(m))).collect();
        for (name, node) in &self.branches {
            options.push(option(name, node.first_model()));
        }
        let decision = at
            .plugin_step(&self.router.plugin, AttemptKind::Router, async {
                entry
                    .plugin
                    .route(
                        &engine.merged(entry, &self.router.config),
                        at.task,
                        &options,
                        engine.plugin_ctx(ctx, path, entry),
                    )
                    .await
            })
            .await?;
        let mut so_far = BestSoFar::default();
        for (i, step) in decision.steps.iter().enumerate() {
            let here = at.at(format!("{path}/route[{i}]:{}", step.target));
            let min = step.min_score.unwrap_or(threshold);
            let result = if let Some(branch) = self.branches.get(&step.target) {
                branch.run(here).await
            } else if self.models.contains(&step.target) {
                Draw {
                    models: std::slice::from_ref(&step.target),
                    k: step.samples.max(1),
                    verify: &self.verify,
                    select: false,
                    threshold: min,
                    mode: SampleMode::Auto,
                }
                .run(here)
                .await
            } else {
                Err(ExecError::Invalid(format!(
                    "router chose `{}`, which is not among its options",
                    step.target
                )))
            };
            let good = |a: &Answer| a.accepted && a.score.is_none_or(|s| s >= min);
            if let ControlFlow::Break(r) = so_far.take(result, good, true) {
                return r;
            }
        }
        so_far.finish("router chose no steps")
    }
}
