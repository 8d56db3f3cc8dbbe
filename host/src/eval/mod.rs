//! `arbiter eval`: replays a dataset through real pipelines, in-process, on the same
//! engine the gateway uses, and scores the chosen answers with the dataset's labels.
//!
//! Replay latencies are simulated on a paused Tokio clock, so a run measures the
//! latency a pipeline would have had with those model latencies without waiting for
//! them; plugin work runs for real.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::pipeline::{
    AttemptKind, AttemptOutcome, Engine, ExecRequest, RequestOutcome, RequestTrace,
};
use crate::providers::replay::Record;
use crate::providers::{estimate_tokens, Price, Usage};
use crate::runtime::types::{Message, Task};

/// Dataset fields handed to plugins under the contract's metadata names.
const METADATA_NAMES: &[(&str, &str)] =
    &[("generated_tests", "tests"), ("entry_point", "entry-point")];

pub struct EvalOptions {
    pub pipelines: Vec<String>,
    pub dataset: PathBuf,
    pub limit: Option<usize>,
    pub concurrency: usize,
    /// Give plugins the gold `reference` as task metadata (for oracle-check verifiers).
    /// Off by default: a verifier must not see the answer key.
    pub with_reference: bool,
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifierQuality {
    /// Verified model answers that carried a ground-truth label.
    pub judged: usize,
    pub accepted: usize,
    /// P(correct | accepted).
    pub precision: Option<f64>,
    /// P(accepted | correct): the share of correct answers the verifiers let through.
    pub recall: Option<f64>,
    /// Correct answers the verifiers rejected.
    pub correct_rejected: usize,
    /// Wrong answers the verifiers accepted.
    pub wrong_accepted: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub pipeline: String,
    pub queries: usize,
    pub answered: usize,
    /// Share of queries whose returned answer is labelled correct.
    pub accuracy: f64,
    pub cost_per_query_usd: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub model_calls_per_query: f64,
    pub cancelled_calls: usize,
    /// How often each model's answer was the one returned.
    pub chosen_models: BTreeMap<String, usize>,
    pub outcomes: BTreeMap<String, usize>,
    pub verifier: VerifierQuality,
    /// Wall time of the whole run for this pipeline (real time, not simulated).
    pub wall_seconds: f64,
    /// Mean real time per verifier call, in microseconds.
    pub verifier_call_us: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReference {
    pub model: String,
    pub samples_per_query: f64,
    /// Success@1: expected accuracy of one sample (mean share of correct samples).
    pub accuracy: f64,
    /// Success@K: share of queries with at least one correct sample among all K.
    pub success_at_k: f64,
    /// Cost per query of one sample, at the configured price (tokens ~ chars / 4).
    pub cost_per_query_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OracleReference {
    /// Cheapest model whose (first) answer is correct, else the cheapest.
    pub accuracy: f64,
    pub cost_per_query_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub queries: usize,
    pub pipelines: Vec<PipelineReport>,
    pub models: Vec<ModelReference>,
    pub oracle: Option<OracleReference>,
    pub simulated_latency: bool,
}

fn task_of(record: &Record, with_reference: bool) -> Task {
    let mut metadata = BTreeMap::new();
    for (k, v) in &record.extra {
        let name = METADATA_NAMES
            .iter()
            .find(|(from, _)| from == k)
            .map_or(k.as_str(), |(_, to)| to);
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        metadata.insert(name.to_string(), text);
    }
    if with_reference {
        if let Some(r) = &record.reference {
            metadata.insert("reference".into(), r.clone());
        }
    }
    Task {
        id: record.id.clone(),
        messages: vec![Message::user(record.prompt.clone())],
        tags: vec![],
        metadata,
        tools: vec![],
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Scores one pipeline's traces against the labels.
pub fn score(
    pipeline: &str,
    traces: &[(RequestTrace, Option<bool>)],
    wall_seconds: f64,
) -> PipelineReport {
    let n = traces.len();
    let mut latencies: Vec<f64> = traces.iter().map(|(t, _)| t.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let correct = traces
        .iter()
        .filter(|(_, label)| *label == Some(true))
        .count();
    let mut chosen_models = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    for (t, _) in traces {
        if let Some(m) = &t.model {
            *chosen_models.entry(m.clone()).or_insert(0) += 1;
        }
        let o = serde_json::to_value(t.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        *outcomes.entry(o).or_insert(0) += 1;
    }
    let (mut judged, mut accepted, mut tp, mut positives, mut correct_rejected, mut wrong_accepted) =
        (0, 0, 0, 0, 0, 0);
    let (mut vcalls, mut vtime) = (0usize, 0.0f64);
    let mut cancelled = 0;
    let mut calls = 0;
    for (t, _) in traces {
        for a in t.attempts.iter().filter(|a| a.kind == AttemptKind::Model) {
            cancelled += usize::from(a.outcome == AttemptOutcome::Cancelled);
            calls += usize::from(a.outcome != AttemptOutcome::OverBudget);
            for v in &a.verdicts {
                vcalls += 1;
                vtime += v.wall_us;
            }
            let verdict = match a.outcome {
                AttemptOutcome::Accepted => true,
                AttemptOutcome::Rejected => false,
                _ => continue,
            };
            let Some(label) = a.label else { continue };
            judged += 1;
            accepted += usize::from(verdict);
            tp += usize::from(verdict && label);
            positives += usize::from(label);
            correct_rejected += usize::from(!verdict && label);
            wrong_accepted += usize::from(verdict && !label);
        }
    }
    PipelineReport {
        pipeline: pipeline.into(),
        queries: n,
        answered: traces
            .iter()
            .filter(|(t, _)| {
                !matches!(
                    t.outcome,
                    RequestOutcome::Failed | RequestOutcome::Cancelled
                )
            })
            .count(),
        accuracy: ratio(correct, n).unwrap_or(0.0),
        cost_per_query_usd: traces.iter().map(|(t, _)| t.cost_usd).sum::<f64>() / n.max(1) as f64,
        latency_p50_ms: percentile(&latencies, 0.5),
        latency_p95_ms: percentile(&latencies, 0.95),
        model_calls_per_query: calls as f64 / n.max(1) as f64,
        cancelled_calls: cancelled,
        chosen_models,
        outcomes,
        verifier: VerifierQuality {
            judged,
            accepted,
            precision: ratio(tp, accepted),
            recall: ratio(tp, positives),
            correct_rejected,
            wrong_accepted,
        },
        wall_seconds,
        verifier_call_us: (vcalls > 0).then(|| vtime / vcalls as f64),
    }
}

/// The dataset's own reference points: each model alone, and oracle routing.
/// Each model's price under its name at the provider, the name a replay dataset records.
/// Of two models for one upstream name, the last by name wins, as in the configuration.
pub fn upstream_prices(engine: &Engine) -> BTreeMap<String, Price> {
    let mut models: Vec<_> = engine.models.iter().collect();
    models.sort_by(|a, b| a.0.cmp(b.0));
    models
        .into_iter()
        .map(|(_, m)| (m.upstream.clone(), m.price))
        .collect()
}

pub fn references(
    records: &[Record],
    prices: &BTreeMap<String, Price>,
) -> (Vec<ModelReference>, Option<OracleReference>) {
    let mut models: Vec<String> = Vec::new();
    for r in records {
        for c in &r.candidates {
            if !models.contains(&c.model) {
                models.push(c.model.clone());
            }
        }
    }
    let cost = |model: &str, prompt: &str, text: &str| {
        prices.get(model).map(|p| {
            p.cost(Usage {
                input_tokens: estimate_tokens(prompt),
                output_tokens: estimate_tokens(text),
            })
        })
    };
    let per_model: Vec<ModelReference> = models
        .iter()
        .map(|m| {
            let (mut acc, mut any, mut samples, mut cost_sum, mut cost_known) =
                (0.0, 0usize, 0usize, 0.0, true);
            for r in records {
                let mine: Vec<_> = r.candidates.iter().filter(|c| &c.model == m).collect();
                if mine.is_empty() {
                    continue;
                }
                samples += mine.len();
                let ok = mine.iter().filter(|c| c.correct == Some(true)).count();
                acc += ok as f64 / mine.len() as f64;
                any += usize::from(ok > 0);
                let mean_cost: Option<f64> = mine
                    .iter()
                    .map(|c| cost(m, &r.prompt, &c.text))
                    .sum::<Option<f64>>()
                    .map(|s| s / mine.len() as f64);
                match mean_cost {
                    Some(c) => cost_sum += c,
                    None => cost_known = false,
                }
            }
            let n = records.len().max(1) as f64;
            ModelReference {
                model: m.clone(),
                samples_per_query: samples as f64 / n,
                accuracy: acc / n,
                success_at_k: any as f64 / n,
                cost_per_query_usd: cost_known.then(|| cost_sum / n),
            }
        })
        .collect();
    let priced: Vec<&String> = {
        let mut p: Vec<&String> = models.iter().filter(|m| prices.contains_key(*m)).collect();
        p.sort_by(|a, b| {
            let c = |m: &String| prices[m].input + prices[m].output;
            c(a).total_cmp(&c(b))
        });
        p
    };
    let oracle = (priced.len() >= 2).then(|| {
        let (mut correct, mut cost_sum) = (0usize, 0.0);
        for r in records {
            let first = |m: &String| r.candidates.iter().find(|c| &c.model == m);
            let pick = priced
                .iter()
                .find(|m| first(m).is_some_and(|c| c.correct == Some(true)))
                .or(priced.first());
            if let Some(m) = pick {
                if let Some(c) = first(m) {
                    correct += usize::from(c.correct == Some(true));
                    cost_sum += cost(m, &r.prompt, &c.text).unwrap_or(0.0);
                }
            }
        }
        let n = records.len().max(1) as f64;
        OracleReference {
            accuracy: correct as f64 / n,
            cost_per_query_usd: cost_sum / n,
        }
    });
    (per_model, oracle)
}

/// Runs every pipeline over the dataset. Must run on a current-thread runtime with the
/// clock paused for simulated latencies (the CLI does that).
pub async fn run(
    engine: Arc<Engine>,
    records: &[Record],
    options: &EvalOptions,
) -> Vec<PipelineReport> {
    let mut reports = Vec::new();
    for pipeline in &options.pipelines {
        let bar = progress_bar(options.progress, records.len() as u64, pipeline);
        let started = std::time::Instant::now();
        let traces: Vec<(RequestTrace, Option<bool>)> =
            futures::stream::iter(records.iter().enumerate())
                .map(|(i, r)| {
                    let engine = engine.clone();
                    let bar = bar.clone();
                    let task = task_of(r, options.with_reference);
                    async move {
                        let request = ExecRequest {
                            id: format!("eval-{i}"),
                            tenant: "default".into(),
                            target: pipeline.clone(),
                            task,
                            budget: Default::default(),
                            sampling: Default::default(),
                            n: 1,
                            spend: None,
                            catalog: None,
                        };
                        let result = engine.execute(request).await;
                        bar.inc(1);
                        (result.trace, result.answer.and_then(|a| a.label))
                    }
                })
                .buffered(options.concurrency.max(1))
                .collect()
                .await;
        bar.finish_and_clear();
        reports.push(score(pipeline, &traces, started.elapsed().as_secs_f64()));
    }
    reports
}

fn progress_bar(show: bool, len: u64, pipeline: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>20} [{bar:30}] {pos}/{len} {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(pipeline.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::replay::RecordedAnswer;

    fn rec(cheap_ok: bool, big_ok: bool) -> Record {
        Record {
            id: "x".into(),
            prompt: "abcd".into(),
            reference: Some("1".into()),
            candidates: vec![
                RecordedAnswer {
                    model: "cheap".into(),
                    text: "abcdefgh".into(),
                    correct: Some(cheap_ok),
                },
                RecordedAnswer {
                    model: "big".into(),
                    text: "abcdefgh".into(),
                    correct: Some(big_ok),
                },
            ],
            extra: BTreeMap::from([("generated_tests".into(), serde_json::json!(["assert f()"]))]),
        }
    }

    #[test]
    fn references_and_oracle() {
        let records = vec![
            rec(true, true),
            rec(false, true),
            rec(false, false),
            rec(true, false),
        ];
        let prices = BTreeMap::from([
            (
                "cheap".to_string(),
                Price {
                    input: 1.0,
                    output: 1.0,
                },
            ),
            (
                "big".to_string(),
                Price {
                    input: 10.0,
                    output: 10.0,
                },
            ),
        ]);
        let (models, oracle) = references(&records, &prices);
        assert_eq!(models[0].model, "cheap");
        assert_eq!(models[0].accuracy, 0.5);
        assert_eq!(models[1].accuracy, 0.5);
        let oracle = oracle.unwrap();
        assert_eq!(oracle.accuracy, 0.75);
        // cheap costs 3e-6 per query (1 + 2 tokens at $1/M), big 3e-5.
        let expected = (3e-6 + 3e-5 + 3e-6 + 3e-6) / 4.0;
        assert!((oracle.cost_per_query_usd - expected).abs() < 1e-12);
        let t = task_of(&records[0], false);
        assert_eq!(t.metadata["tests"], "[\"assert f()\"]");
        assert!(
            !t.metadata.contains_key("reference"),
            "the answer key stays hidden"
        );
        assert!(task_of(&records[0], true)
            .metadata
            .contains_key("reference"));
    }
}
