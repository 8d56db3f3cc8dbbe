//! `arbiter eval`: replays a dataset through real pipelines, in-process, on the same
//! engine the gateway uses, and scores the chosen answers with the dataset's labels.
//!
//! Replay latencies are simulated on a paused Tokio clock, so a run measures the
//! latency a pipeline would have had with those model latencies without waiting for
//! them; plugin work runs for real.

pub mod plot;
mod preverify;
mod progress;

pub use preverify::pre_verify;

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

pub use progress::ProgressMode;

/// Success@K curves stop here: the figure's range, and beyond it the curves are flat.
pub const MAX_CURVE_K: usize = 100;

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
    pub progress: ProgressMode,
}

/// One point of a Success@K curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KPoint {
    pub k: usize,
    /// Share of queries with at least one correct answer among K samples.
    pub success: f64,
}

/// One point of a latency distribution: `share` of the queries took at most `ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyPoint {
    pub share: f64,
    pub ms: f64,
}

/// A pipeline on the cost-accuracy plane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostAccuracy {
    pub pipeline: String,
    pub cost_per_query_usd: f64,
    pub accuracy: f64,
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
    /// The strategy of the pipeline's top node (`race`, `cascade`, `best_of/sequential`...).
    pub strategy: Option<String>,
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
    /// Success@K over the model answers this pipeline drew for each query, in the order
    /// it drew them (K = 1 up to the most any query drew, at most 100): what a perfect
    /// selector among its first K samples would score. `accuracy` is its own top-1.
    pub success_at_k: Vec<KPoint>,
    /// Latency distribution at every 5th percentile (0 to 100).
    pub latency_cdf: Vec<LatencyPoint>,
    /// Whether no other pipeline of the run is at least as accurate for less.
    pub on_frontier: bool,
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
    /// Unbiased Success@K estimate for K = 1 up to the fewest samples any query has
    /// (at most 100): 1 - C(n-c, K) / C(n, K) per query, averaged.
    pub success_at_k_curve: Vec<KPoint>,
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
    /// The pipelines' cost-accuracy Pareto frontier, cheapest first.
    pub frontier: Vec<CostAccuracy>,
    pub simulated_latency: bool,
    /// Verifications run and reused across the pipelines (absent with `--fresh-verdicts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifications: Option<Verifications>,
}

/// How much verification the run shared between pipelines.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verifications {
    /// Run ahead, on every core, by `--pre-verify`.
    pub ahead: u64,
    /// Run while the pipelines ran.
    pub run: u64,
    pub reused: u64,
}

impl EvalReport {
    /// Assembles the report and marks the frontier.
    pub fn new(
        dataset: String,
        queries: usize,
        mut pipelines: Vec<PipelineReport>,
        models: Vec<ModelReference>,
        oracle: Option<OracleReference>,
    ) -> EvalReport {
        let points: Vec<CostAccuracy> = pipelines
            .iter()
            .map(|p| CostAccuracy {
                pipeline: p.pipeline.clone(),
                cost_per_query_usd: p.cost_per_query_usd,
                accuracy: p.accuracy,
            })
            .collect();
        let frontier = pareto_frontier(&points);
        for p in &mut pipelines {
            p.on_frontier = frontier.iter().any(|f| f.pipeline == p.pipeline);
        }
        EvalReport {
            dataset,
            queries,
            pipelines,
            models,
            oracle,
            frontier,
            simulated_latency: true,
            verifications: None,
        }
    }
}

/// The points no other point dominates (at most the cost and strictly more accurate,
/// or strictly cheaper and as accurate), cheapest first. Accuracy rises along it; equal
/// points (two names for one pipeline) are both on it.
pub fn pareto_frontier(points: &[CostAccuracy]) -> Vec<CostAccuracy> {
    let mut sorted: Vec<&CostAccuracy> = points.iter().collect();
    // Cheapest first; at equal cost the most accurate first, so it shadows the others.
    sorted.sort_by(|a, b| {
        a.cost_per_query_usd
            .total_cmp(&b.cost_per_query_usd)
            .then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut frontier: Vec<CostAccuracy> = Vec::new();
    for p in sorted {
        if frontier.last().is_none_or(|best| {
            p.accuracy > best.accuracy
                || (p.accuracy == best.accuracy && p.cost_per_query_usd == best.cost_per_query_usd)
        }) {
            frontier.push(p.clone());
        }
    }
    frontier
}

/// Success@K over each query's samples in the order drawn: `first_correct[q]` is the
/// index of query q's first correct sample; `drawn` the most samples any query drew.
fn ordered_success_at_k(first_correct: &[Option<usize>], drawn: usize) -> Vec<KPoint> {
    let n = first_correct.len().max(1) as f64;
    (1..=drawn.min(MAX_CURVE_K))
        .map(|k| KPoint {
            k,
            success: first_correct
                .iter()
                .filter(|i| i.is_some_and(|i| i < k))
                .count() as f64
                / n,
        })
        .collect()
}

/// The unbiased pass@k estimator (Chen et al. 2021) for n samples with c correct.
fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if n - c < k {
        return 1.0;
    }
    // 1 - C(n-c, k) / C(n, k) as a product, which stays in range for n = 100.
    1.0 - ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

fn latency_cdf(sorted: &[f64]) -> Vec<LatencyPoint> {
    if sorted.is_empty() {
        return Vec::new();
    }
    (0..=20)
        .map(|i| {
            let share = f64::from(i) / 20.0;
            LatencyPoint {
                share,
                ms: percentile(sorted, share),
            }
        })
        .collect()
}

/// How a pipeline's top node is configured, for legends: the `type`, and a best_of's
/// `mode` (sequential best_of is the counterpart of a race).
pub fn strategy_name(node: &crate::pipeline::Node) -> Option<String> {
    let v = serde_json::to_value(node).ok()?;
    let kind = v.get("type")?.as_str()?.to_string();
    Some(match v.get("mode").and_then(|m| m.as_str()) {
        Some(mode) if kind == "best_of" => format!("{kind}/{mode}"),
        _ => kind,
    })
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
    let (mut first_correct, mut drawn) = (Vec::with_capacity(n), 0);
    for (t, _) in traces {
        let mut samples: Vec<_> = t
            .attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Model && a.outcome != AttemptOutcome::OverBudget)
            .collect();
        samples.sort_by_key(|a| a.seq);
        drawn = drawn.max(samples.len());
        first_correct.push(samples.iter().position(|a| a.label == Some(true)));
        for a in t.attempts.iter().filter(|a| a.kind == AttemptKind::Model) {
            cancelled += usize::from(a.outcome == AttemptOutcome::Cancelled);
            calls += usize::from(a.outcome != AttemptOutcome::OverBudget);
            for v in a.verdicts.iter().filter(|v| !v.reused) {
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
        strategy: None,
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
        success_at_k: ordered_success_at_k(&first_correct, drawn),
        latency_cdf: latency_cdf(&latencies),
        on_frontier: false,
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
            // (samples, correct) per query that has this model's answers.
            let mut counts: Vec<(usize, usize)> = Vec::new();
            for r in records {
                let mine: Vec<_> = r.candidates.iter().filter(|c| &c.model == m).collect();
                if mine.is_empty() {
                    continue;
                }
                samples += mine.len();
                let ok = mine.iter().filter(|c| c.correct == Some(true)).count();
                counts.push((mine.len(), ok));
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
            let k_max = counts.iter().map(|c| c.0).min().unwrap_or(0);
            // A query without this model's answers counts as a miss, as in `accuracy`.
            let success_at_k_curve = (1..=k_max.min(MAX_CURVE_K))
                .map(|k| KPoint {
                    k,
                    success: counts.iter().map(|&(s, c)| pass_at_k(s, c, k)).sum::<f64>() / n,
                })
                .collect();
            ModelReference {
                model: m.clone(),
                samples_per_query: samples as f64 / n,
                accuracy: acc / n,
                success_at_k: any as f64 / n,
                cost_per_query_usd: cost_known.then(|| cost_sum / n),
                success_at_k_curve,
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
        let mut progress = options.progress.start(pipeline, records.len());
        let started = std::time::Instant::now();
        let traces: Vec<(RequestTrace, Option<bool>)> =
            futures::stream::iter(records.iter().enumerate())
                .map(|(i, r)| {
                    let engine = engine.clone();
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
                        (result.trace, result.answer.and_then(|a| a.label))
                    }
                })
                .buffered(options.concurrency.max(1))
                .inspect(|_| progress.inc())
                .collect()
                .await;
        progress.finish();
        let mut report = score(pipeline, &traces, started.elapsed().as_secs_f64());
        report.strategy = engine
            .resolve("default", None, pipeline, true)
            .ok()
            .and_then(|(node, _, _)| strategy_name(&node));
        reports.push(report);
    }
    reports
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

    fn point(name: &str, cost: f64, accuracy: f64) -> CostAccuracy {
        CostAccuracy {
            pipeline: name.into(),
            cost_per_query_usd: cost,
            accuracy,
        }
    }

    fn names(f: &[CostAccuracy]) -> Vec<&str> {
        f.iter().map(|p| p.pipeline.as_str()).collect()
    }

    #[test]
    fn frontier_keeps_what_nothing_cheaper_beats() {
        let points = [
            point("expensive", 3.7, 0.858),
            point("race", 1.5, 0.779),
            point("cascade", 1.0, 0.782),
            point("cheap", 0.08, 0.635),
            point("strict", 1.3, 0.806),
        ];
        // `race` costs more than `cascade` for less: dominated.
        assert_eq!(
            names(&pareto_frontier(&points)),
            ["cheap", "cascade", "strict", "expensive"]
        );
    }

    #[test]
    fn frontier_ties_and_edge_cases() {
        assert!(pareto_frontier(&[]).is_empty());
        assert_eq!(names(&pareto_frontier(&[point("a", 1.0, 0.5)])), ["a"]);
        // Equal cost: only the more accurate. Equal accuracy: only the cheaper.
        let points = [
            point("a", 1.0, 0.5),
            point("b", 1.0, 0.7),
            point("c", 2.0, 0.7),
            point("d", 0.5, 0.2),
        ];
        assert_eq!(names(&pareto_frontier(&points)), ["d", "b"]);
        // Identical points: neither dominates the other.
        let same = [
            point("x", 1.0, 0.5),
            point("y", 1.0, 0.5),
            point("z", 2.0, 0.5),
        ];
        assert_eq!(names(&pareto_frontier(&same)), ["x", "y"]);
        // A free pipeline that is also the most accurate dominates everything.
        let free = [point("paid", 2.0, 0.6), point("free", 0.0, 0.9)];
        assert_eq!(names(&pareto_frontier(&free)), ["free"]);
    }

    #[test]
    fn report_marks_the_frontier() {
        let mut cheap = score("cheap", &[], 0.0);
        cheap.cost_per_query_usd = 1.0;
        cheap.accuracy = 0.5;
        let mut dear = score("dear", &[], 0.0);
        dear.cost_per_query_usd = 2.0;
        dear.accuracy = 0.4;
        let r = EvalReport::new("d".into(), 0, vec![cheap, dear], vec![], None);
        assert!(r.pipelines[0].on_frontier);
        assert!(!r.pipelines[1].on_frontier);
        assert_eq!(names(&r.frontier), ["cheap"]);
    }

    #[test]
    fn success_at_k_estimates() {
        // n = 4 samples, c = 1 correct: P(hit in k draws without replacement) = k / 4.
        for k in 1..=4 {
            assert!((pass_at_k(4, 1, k) - k as f64 / 4.0).abs() < 1e-12);
        }
        assert_eq!(pass_at_k(5, 0, 3), 0.0);
        assert_eq!(
            pass_at_k(5, 4, 2),
            1.0,
            "only one wrong sample: any two hit"
        );
        // Samples in the order drawn: first correct at 0, at 2, never.
        let curve = ordered_success_at_k(&[Some(0), Some(2), None], 3);
        let s: Vec<f64> = curve.iter().map(|p| p.success).collect();
        assert_eq!(s, [1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0]);
        assert_eq!(ordered_success_at_k(&[Some(0)], 500).len(), MAX_CURVE_K);
        let records = vec![rec(true, false), rec(false, false)];
        let (models, _) = references(&records, &BTreeMap::new());
        assert_eq!(
            models[0].success_at_k_curve,
            [KPoint { k: 1, success: 0.5 }]
        );
    }

    #[test]
    fn latency_cdf_runs_from_fastest_to_slowest() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        let cdf = latency_cdf(&sorted);
        assert_eq!(cdf.len(), 21);
        assert_eq!((cdf[0].share, cdf[0].ms), (0.0, 1.0));
        assert_eq!((cdf[20].share, cdf[20].ms), (1.0, 100.0));
        assert!(cdf.windows(2).all(|w| w[0].ms <= w[1].ms));
        assert!(latency_cdf(&[]).is_empty());
    }
}
