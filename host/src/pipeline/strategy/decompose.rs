//! `decompose`: a decomposer plugin splits the task into a DAG of sub-tasks; each runs
//! through `sub` (independent ones in parallel, recursively up to the depth limit), then
//! the decomposer composes the answers.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};

use super::{Node, PluginUse, Strategy, Visitor};
use crate::pipeline::context::{RequestCtx, Step};
use crate::pipeline::engine::Engine;
use crate::pipeline::error::ExecError;
use crate::pipeline::request::Answer;
use crate::pipeline::spec::{PluginRef, VerifierRef};
use crate::pipeline::trace::AttemptKind;
use crate::runtime::types::{Message, PluginKind, Subresult, Task};

const DEFAULT_MAX_DEPTH: u32 = 3;
/// Sub-tasks of one plan running at once, unless the pipeline says otherwise.
const DEFAULT_MAX_PARALLEL: usize = 4;
/// Sub-tasks one plan may have, unless the pipeline says otherwise: a plan is the
/// plugin's output, and each sub-task costs at least a model call.
const DEFAULT_MAX_SUBTASKS: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decompose {
    pub decomposer: PluginRef,
    pub sub: Box<Node>,
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// Sub-tasks of one plan running at once (default 4); the rest wait their turn.
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// A plan with more sub-tasks than this is refused (default 32).
    #[serde(default)]
    pub max_subtasks: Option<usize>,
}

impl Strategy for Decompose {
    fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        visitor.plugin(PluginUse {
            name: &self.decomposer.plugin,
            kind: PluginKind::Decomposer,
            config: &self.decomposer.config,
        });
    }

    fn children(&self) -> Vec<&Node> {
        vec![&self.sub]
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        let (engine, ctx, task, path, depth) =
            (at.engine, at.ctx, at.task, at.path.as_str(), at.depth);
        let sub = &*self.sub;
        let direct = || Step {
            path: format!("{path}/direct"),
            depth: depth + 1,
            ..at.clone()
        };
        let limit = self
            .max_depth
            .or(ctx.budget.limits.max_depth)
            .unwrap_or(DEFAULT_MAX_DEPTH);
        if depth >= limit {
            // At the depth limit the task is answered directly, not split further.
            return sub.run(direct()).await;
        }
        let entry = engine.plugin(ctx, &self.decomposer.plugin, PluginKind::Decomposer)?;
        let config = engine.merged(entry, &self.decomposer.config);
        let plan = at
            .plugin_step(&self.decomposer.plugin, AttemptKind::Decomposer, async {
                entry
                    .plugin
                    .decompose(&config, task, engine.plugin_ctx(ctx, path, entry))
                    .await
            })
            .await?;
        if plan.subtasks.is_empty() {
            return sub.run(direct()).await;
        }
        let max_subtasks = self.max_subtasks.unwrap_or(DEFAULT_MAX_SUBTASKS);
        if plan.subtasks.len() > max_subtasks {
            return Err(ExecError::Plugin {
                plugin: self.decomposer.plugin.clone(),
                code: "plan_too_large".into(),
                message: format!(
                    "the plan has {} sub-tasks; this pipeline takes at most {max_subtasks} \
                     (`max_subtasks`)",
                    plan.subtasks.len()
                ),
            });
        }
        let max_parallel = self.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL).max(1);
        let mut results: HashMap<String, Answer> = HashMap::new();
        let mut started: HashSet<String> = HashSet::new();
        let mut running = FuturesUnordered::new();
        loop {
            // Start sub-tasks whose dependencies are answered, up to `max_parallel` at
            // once: independent ones run in parallel.
            for st in &plan.subtasks {
                if running.len() >= max_parallel {
                    break;
                }
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
                    tools: task.tools.clone(),
                };
                let node = hinted(engine, ctx, sub, st.route.as_deref(), st.verify.as_deref());
                let p = format!("{path}/{}", st.id);
                let id = st.id.clone();
                running.push(
                    async move {
                        let node = node;
                        let here = Step {
                            engine,
                            ctx,
                            task: &sub_task,
                            path: p,
                            depth: depth + 1,
                        };
                        let r = node.run(here).await;
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
        let text = at
            .plugin_step(&self.decomposer.plugin, AttemptKind::Decomposer, async {
                entry
                    .plugin
                    .compose(
                        &config,
                        task,
                        &subresults,
                        engine.plugin_ctx(ctx, path, entry),
                    )
                    .await
            })
            .await?;
        let answers: Vec<&Answer> = results.values().collect();
        Ok(Answer {
            text,
            tool_calls: Vec::new(),
            logprobs: None,
            finish_reason: None,
            alternatives: Vec::new(),
            model: format!("composed:{}", self.decomposer.plugin),
            accepted: answers.iter().all(|a| a.accepted),
            verified: answers.iter().any(|a| a.verified),
            score: answers.iter().filter_map(|a| a.score).reduce(f64::min),
            attempt: None,
            label: None,
        })
    }
}

/// Applies a sub-task's hints: `route` names a pipeline of the tenant or a model;
/// `verify` adds a verifier to a model-call step.
fn hinted(
    engine: &Engine,
    ctx: &RequestCtx,
    sub: &Node,
    route: Option<&str>,
    verify: Option<&str>,
) -> Node {
    let mut node = match route.and_then(|r| {
        engine
            .resolve(&ctx.tenant, ctx.catalog.as_deref(), r, false)
            .ok()
    }) {
        Some((n, _, _)) => n,
        None => sub.clone(),
    };
    if let (Some(v), Node::Single(single)) = (verify, &mut node) {
        if engine
            .plugins
            .get(v)
            .is_some_and(|p| p.plugin.kind() == PluginKind::Verifier)
            && !single.verify.iter().any(|c| c.plugin == v)
        {
            single.verify.push(VerifierRef {
                plugin: v.into(),
                config: BTreeMap::new(),
                weight: 1.0,
            });
        }
    }
    node
}
