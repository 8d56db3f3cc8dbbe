//! Per-model outcome statistics (success rate, latency percentiles), overall and per
//! tag, kept in memory from recorded attempts and feedback: what routers read through
//! the `stats` capability, and what `best_of` plans with. Each tenant has its own book.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::pipeline::{AttemptKind, AttemptOutcome, OutcomeStats, RequestTrace};
use crate::runtime::types::ModelStats;

/// Latencies kept per key for percentiles.
const WINDOW: usize = 512;

/// Tags kept per tenant and model. Callers choose tags freely (a customer id per request
/// is a natural use), so without a bound the book would grow with every new one; past
/// it, the tag updated longest ago is forgotten.
const MAX_TAGS: usize = 1024;

#[derive(Default)]
struct Agg {
    /// Attempts whose outcome is known: verified, failed, or judged by feedback.
    judged: u64,
    successes: u64,
    latencies: VecDeque<f64>,
    /// When this entry was last updated, on its model's clock.
    touched: u64,
}

impl Agg {
    fn add(&mut self, latency_ms: Option<f64>, success: Option<bool>) {
        if let Some(s) = success {
            self.judged += 1;
            self.successes += u64::from(s);
        }
        if let Some(l) = latency_ms {
            if self.latencies.len() == WINDOW {
                self.latencies.pop_front();
            }
            self.latencies.push_back(l);
        }
    }

    /// Copies what a query needs, so percentiles are computed outside the book's lock.
    fn snapshot(&self) -> (ModelStats, Vec<f64>) {
        // `attempts` counts what the success rate is computed from: a model whose answers
        // nobody judged has 0, not a success rate of 0 over many attempts.
        let stats = ModelStats {
            attempts: self.judged,
            success_rate: if self.judged == 0 {
                0.0
            } else {
                self.successes as f64 / self.judged as f64
            },
            latency_p50_ms: 0.0,
            latency_p95_ms: 0.0,
        };
        (stats, self.latencies.iter().copied().collect())
    }
}

/// The `q` quantile of `l` (nearest rank), selected without sorting all of it.
fn quantile(l: &mut [f64], q: f64) -> f64 {
    if l.is_empty() {
        return 0.0;
    }
    let rank = ((l.len() - 1) as f64 * q).round() as usize;
    *l.select_nth_unstable_by(rank, f64::total_cmp).1
}

/// A model's figures overall and per tag, so a lookup by `&str` needs no allocation.
#[derive(Default)]
struct ModelAggs {
    all: Agg,
    by_tag: HashMap<String, Agg>,
    /// Counts updates, to find the tag updated longest ago.
    clock: u64,
}

impl ModelAggs {
    /// The figures for `tag`, making room when it is new and [`MAX_TAGS`] are kept. The
    /// scan for the oldest runs only then, over a bounded map.
    fn tag(&mut self, tag: &str) -> &mut Agg {
        self.clock += 1;
        if !self.by_tag.contains_key(tag) && self.by_tag.len() >= MAX_TAGS {
            let oldest = self
                .by_tag
                .iter()
                .min_by_key(|(_, a)| a.touched)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.by_tag.remove(&k);
            }
        }
        let agg = slot(&mut self.by_tag, tag);
        agg.touched = self.clock;
        agg
    }
}

/// Tenant → model → figures.
#[derive(Default)]
pub struct StatsBook {
    by_tenant: Mutex<HashMap<String, HashMap<String, ModelAggs>>>,
}

/// One outcome as the book counts it: what replicas sharing a store tell each other, so
/// a router on one learns from the answers judged on another.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsEvent {
    #[serde(rename = "t")]
    pub tenant: String,
    #[serde(rename = "m")]
    pub model: String,
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

/// What an attempt adds to the book (latency, success), or nothing: a model call that
/// was never answered (cancelled, over budget) tells nothing about the model.
fn counted(a: &crate::pipeline::AttemptRecord) -> Option<(Option<f64>, Option<bool>)> {
    if a.kind != AttemptKind::Model {
        return None;
    }
    let latency = matches!(
        a.outcome,
        AttemptOutcome::Accepted | AttemptOutcome::Rejected | AttemptOutcome::Unverified
    )
    .then_some(a.latency_ms);
    (latency.is_some() || a.outcome == AttemptOutcome::Failed)
        .then(|| (latency, success_of(a.outcome)))
}

/// Success of an attempt as far as it is known: accepted or rejected by verifiers,
/// failed upstream; unverified answers count for latency only.
fn success_of(outcome: AttemptOutcome) -> Option<bool> {
    match outcome {
        AttemptOutcome::Accepted => Some(true),
        AttemptOutcome::Rejected | AttemptOutcome::Failed => Some(false),
        _ => None,
    }
}

impl StatsBook {
    pub fn new() -> StatsBook {
        StatsBook::default()
    }

    pub fn add(
        &self,
        tenant: &str,
        model: &str,
        tags: &[String],
        latency_ms: Option<f64>,
        success: Option<bool>,
    ) {
        let mut map = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        let aggs = slot(slot(&mut map, tenant), model);
        aggs.all.add(latency_ms, success);
        for t in tags {
            aggs.tag(t).add(latency_ms, success);
        }
    }

    pub fn record(&self, trace: &RequestTrace) {
        for a in &trace.attempts {
            if let Some((latency, success)) = counted(a) {
                self.add(&trace.tenant, &a.model, &trace.tags, latency, success);
            }
        }
    }

    /// What [`StatsBook::record`] adds for `trace`, as events for other replicas.
    pub fn events(trace: &RequestTrace) -> Vec<StatsEvent> {
        trace
            .attempts
            .iter()
            .filter_map(|a| {
                counted(a).map(|(latency_ms, success)| StatsEvent {
                    tenant: trace.tenant.clone(),
                    model: a.model.clone(),
                    tags: trace.tags.clone(),
                    latency_ms,
                    success,
                })
            })
            .collect()
    }

    pub fn apply(&self, e: &StatsEvent) {
        self.add(&e.tenant, &e.model, &e.tags, e.latency_ms, e.success);
    }

    /// Ground truth from feedback on a request's chosen model: a judged attempt without
    /// a latency.
    pub fn feedback(&self, tenant: &str, model: &str, tags: &[String], correct: bool) {
        self.add(tenant, model, tags, None, Some(correct));
    }

    /// Every model `tenant` has figures for, by name, with how many latencies the
    /// percentiles are taken from (at most the last 512): what the console's Models page
    /// shows, as routers read it.
    pub fn models(&self, tenant: &str) -> Vec<(String, ModelStats, usize)> {
        let snapshots: Vec<(String, ModelStats, Vec<f64>)> = {
            let map = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
            let Some(models) = map.get(tenant) else {
                return Vec::new();
            };
            models
                .iter()
                .map(|(m, aggs)| {
                    let (stats, latencies) = aggs.all.snapshot();
                    (m.clone(), stats, latencies)
                })
                .collect()
        };
        let mut out: Vec<(String, ModelStats, usize)> = snapshots
            .into_iter()
            .map(|(m, mut stats, mut latencies)| {
                stats.latency_p50_ms = quantile(&mut latencies, 0.5);
                stats.latency_p95_ms = quantile(&mut latencies, 0.95);
                (m, stats, latencies.len())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Takes `other`'s figures in place of these (statistics rebuilt from the store).
    pub fn replace(&self, other: StatsBook) {
        let fresh = other
            .by_tenant
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        *self.by_tenant.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
    }
}

/// The entry for `key`, allocating the key only when it is new (`entry` would take an
/// owned `String` on every lookup).
fn slot<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl OutcomeStats for StatsBook {
    fn latency(&self, tenant: &str, model: &str) -> Option<(usize, f64)> {
        let mut latencies: Vec<f64> = {
            let map = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
            let agg = &map.get(tenant)?.get(model)?.all;
            agg.latencies.iter().copied().collect()
        };
        Some((latencies.len(), quantile(&mut latencies, 0.5)))
    }

    fn query(&self, tenant: &str, model: &str, tag: Option<&str>) -> Option<ModelStats> {
        let (mut stats, mut latencies) = {
            let map = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
            let aggs = map.get(tenant)?.get(model)?;
            match tag {
                None => aggs.all.snapshot(),
                Some(t) => aggs.by_tag.get(t)?.snapshot(),
            }
        };
        stats.latency_p50_ms = quantile(&mut latencies, 0.5);
        stats.latency_p95_ms = quantile(&mut latencies, 0.95);
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentiles() {
        let book = StatsBook::new();
        for i in 0..10 {
            book.add(
                "t",
                "m",
                &["math".into()],
                Some(i as f64 * 10.0),
                Some(i % 2 == 0),
            );
        }
        book.add("t", "m", &[], Some(1000.0), None);
        let s = book.query("t", "m", None).unwrap();
        // The unverified attempt counts for latency, not towards the success rate.
        assert_eq!(s.attempts, 10);
        assert!((s.success_rate - 0.5).abs() < 1e-9);
        assert_eq!(s.latency_p50_ms, 50.0);
        assert_eq!(s.latency_p95_ms, 1000.0);
        assert_eq!(book.query("t", "m", Some("math")).unwrap().attempts, 10);
        assert!(book.query("t", "m", Some("code")).is_none());
        book.feedback("t", "m", &[], true);
        assert!(book.query("t", "m", None).unwrap().success_rate > 0.5);
        book.feedback("t", "m", &["math".into()], false);
        assert!(book.query("t", "m", Some("math")).unwrap().success_rate < 0.5);
        assert!(book.query("t", "other", None).is_none());

        // Answers nobody judged: no success rate to speak of, but latencies.
        book.add("t", "open", &[], Some(40.0), None);
        book.add("t", "open", &[], Some(60.0), None);
        let s = book.query("t", "open", None).unwrap();
        assert_eq!((s.attempts, s.latency_p95_ms), (0, 60.0));
        assert_eq!(book.latency("t", "open"), Some((2, 60.0)));
        assert_eq!(book.latency("u", "open"), None);
    }

    /// One tenant's traffic, tags and feedback are invisible in another's figures.
    #[test]
    fn each_tenant_sees_only_its_own_outcomes() {
        let book = StatsBook::new();
        for i in 0..4 {
            book.add(
                "a",
                "m",
                &["secret".into()],
                Some(10.0 + i as f64),
                Some(true),
            );
        }
        book.add("b", "m", &[], Some(900.0), Some(false));
        book.feedback("b", "m", &["secret".into()], false);
        let a = book.query("a", "m", None).unwrap();
        assert_eq!((a.attempts, a.success_rate), (4, 1.0));
        assert_eq!(a.latency_p95_ms, 13.0);
        let b = book.query("b", "m", None).unwrap();
        assert_eq!(
            (b.attempts, b.success_rate, b.latency_p50_ms),
            (2, 0.0, 900.0)
        );
        assert_eq!(book.query("a", "m", Some("secret")).unwrap().attempts, 4);
        let listed = book.models("a");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].1.attempts, listed[0].2), (4, 4), "a's own four");
        assert!(book.models("c").is_empty());
        assert_eq!(
            book.query("b", "m", Some("secret")).map(|s| s.attempts),
            Some(1),
            "b's own feedback under its own tag, none of a's attempts"
        );
        assert!(book.query("c", "m", None).is_none());
    }

    #[test]
    fn percentiles_by_nearest_rank_in_any_arrival_order() {
        let book = StatsBook::new();
        // 1..=101 ms, shuffled deterministically.
        for i in 0..101u64 {
            book.add("t", "m", &[], Some(((i * 37) % 101 + 1) as f64), None);
        }
        let s = book.query("t", "m", None).unwrap();
        assert_eq!((s.latency_p50_ms, s.latency_p95_ms), (51.0, 96.0));
        // Only the newest WINDOW latencies count.
        for _ in 0..WINDOW {
            book.add("t", "m", &[], Some(7.0), None);
        }
        let s = book.query("t", "m", None).unwrap();
        assert_eq!((s.latency_p50_ms, s.latency_p95_ms), (7.0, 7.0));
    }

    /// Callers choose tags freely: a new tag per request must not grow the book without
    /// end. The tags in use stay; the one updated longest ago goes.
    #[test]
    fn tags_are_bounded_and_the_stalest_goes() {
        let book = StatsBook::new();
        book.add("t", "m", &["busy".into()], Some(1.0), Some(true));
        for i in 0..3 * MAX_TAGS {
            book.add("t", "m", &[format!("request-{i}")], Some(2.0), Some(false));
            if i % 100 == 0 {
                book.feedback("t", "m", &["busy".into()], true);
            }
        }
        let map = book.by_tenant.lock().unwrap();
        let aggs = &map["t"]["m"];
        assert_eq!(aggs.by_tag.len(), MAX_TAGS);
        assert_eq!(aggs.all.judged, 1 + 3 * MAX_TAGS as u64 + 31);
        drop(map);
        assert!(
            book.query("t", "m", Some("busy")).is_some(),
            "a tag in use is kept"
        );
        assert!(book.query("t", "m", Some("request-0")).is_none());
        let newest = format!("request-{}", 3 * MAX_TAGS - 1);
        assert_eq!(book.query("t", "m", Some(&newest)).unwrap().attempts, 1);
    }
}
