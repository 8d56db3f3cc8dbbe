//! `arbiter eval --pre-verify`: every recorded candidate of the dataset judged once, by
//! every capability-free verifier the evaluated pipelines use, on every core, before the
//! pipelines run; they then reuse those verdicts (`pipeline::verdict_memo`).
//!
//! Why ahead: during the run, a plugin call takes no simulated time, so the paused clock
//! cannot advance while one is in flight, and samples that arrive at different simulated
//! times are judged one after another. Judged ahead, nothing waits on the clock.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;

use super::task_of;
use crate::pipeline::engine::Engine;
use crate::pipeline::verdict_memo::VerdictMemo;
use crate::providers::replay::Record;
use crate::runtime::capability::{CallContext, Grants};
use crate::runtime::types::{Candidate, PluginConfig, PluginKind};

/// Pipelines named inside pipelines are followed this deep at most.
const MAX_DEPTH: usize = 8;

/// The verifiers (plugin, merged settings) the pipelines use, capability-free ones only.
fn verifier_uses(engine: &Engine, pipelines: &[String]) -> BTreeSet<(String, PluginConfig)> {
    let mut uses = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<(String, usize)> = pipelines.iter().map(|p| (p.clone(), 0)).collect();
    while let Some((name, depth)) = todo.pop() {
        if depth > MAX_DEPTH || !seen.insert(name.clone()) {
            continue;
        }
        let Ok((node, _, _)) = engine.resolve("default", None, &name, depth == 0) else {
            continue;
        };
        let inventory = node.inventory();
        for u in inventory.plugins {
            let Some(entry) = engine.plugins.get(u.name) else {
                continue;
            };
            if u.kind == PluginKind::Verifier && entry.plugin.options().grants == Grants::NONE {
                uses.insert((u.name.to_string(), engine.merged(entry, u.config)));
            }
        }
        todo.extend(
            inventory
                .pipelines
                .iter()
                .map(|p| (p.to_string(), depth + 1)),
        );
    }
    uses
}

/// Judges the dataset's candidates ahead, `parallel` calls at once; returns how many
/// verdicts it added.
pub async fn pre_verify(
    engine: &Arc<Engine>,
    memo: &VerdictMemo,
    records: &[Record],
    pipelines: &[String],
    with_reference: bool,
    parallel: usize,
) -> u64 {
    let uses = verifier_uses(engine, pipelines);
    let mut jobs = Vec::new();
    for r in records {
        let task = Arc::new(task_of(r, with_reference));
        for (plugin, config) in &uses {
            let entry = &engine.plugins[plugin];
            let digest = &entry.plugin.load_report().digest;
            let mut texts = BTreeSet::new();
            for c in &r.candidates {
                // The same text sampled twice is one input.
                if !texts.insert((&c.model, &c.text)) {
                    continue;
                }
                let candidate = Candidate {
                    index: 0,
                    model: c.model.clone(),
                    text: c.text.clone(),
                    tool_calls: Vec::new(),
                    logprobs: Vec::new(),
                };
                let Some(key) = VerdictMemo::key(digest, config, &task, &candidate) else {
                    continue;
                };
                if !memo.contains(&key) {
                    jobs.push((entry.plugin.clone(), config, task.clone(), candidate, key));
                }
            }
        }
    }
    futures::stream::iter(jobs)
        .map(|(plugin, config, task, candidate, key)| async move {
            let result = plugin
                .verify(config, &task, &candidate, CallContext::default())
                .await;
            // Other failures are not kept: the pipeline that meets the candidate tries
            // again.
            memo.keep(key, &result);
        })
        .buffer_unordered(parallel.max(1))
        .count()
        .await as u64
}
