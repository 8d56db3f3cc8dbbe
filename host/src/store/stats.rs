//! Per-model outcome statistics (success rate, latency percentiles), overall and per
//! tag, kept in memory from recorded attempts and feedback: what routers read through
//! the `stats` capability, and what `best_of` plans with.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::pipeline::{AttemptKind, AttemptOutcome, RequestTrace};
use crate::runtime::types::ModelStats;
use crate::runtime::StatsSource;

/// Latencies kept per key for percentiles.
const WINDOW: usize = 512;

#[derive(Default)]
struct Agg {
    attempts: u64,
    judged: u64,
    successes: u64,
    latencies: VecDeque<f64>,
}

impl Agg {
    fn add(&mut self, latency_ms: Option<f64>, success: Option<bool>) {
        self.attempts += 1;
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
        let stats = ModelStats {
            attempts: self.attempts,
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
}

#[derive(Default)]
pub struct StatsBook {
    by_model: Mutex<HashMap<String, ModelAggs>>,
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
        model: &str,
        tags: &[String],
        latency_ms: Option<f64>,
        success: Option<bool>,
    ) {
        let mut map = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
        let aggs = slot(&mut map, model);
        aggs.all.add(latency_ms, success);
        for t in tags {
            slot(&mut aggs.by_tag, t).add(latency_ms, success);
        }
    }

    pub fn record(&self, trace: &RequestTrace) {
        for a in trace
            .attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Model)
        {
            let latency = matches!(
                a.outcome,
                AttemptOutcome::Accepted | AttemptOutcome::Rejected | AttemptOutcome::Unverified
            )
            .then_some(a.latency_ms);
            if latency.is_some() || a.outcome == AttemptOutcome::Failed {
                self.add(&a.model, &trace.tags, latency, success_of(a.outcome));
            }
        }
    }

    /// Ground truth from feedback on a request's chosen model.
    pub fn feedback(&self, model: &str, tags: &[String], correct: bool) {
        let mut map = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
        let aggs = slot(&mut map, model);
        let bump = |agg: &mut Agg| {
            agg.judged += 1;
            agg.successes += u64::from(correct);
        };
        bump(&mut aggs.all);
        for t in tags {
            bump(slot(&mut aggs.by_tag, t));
        }
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

impl StatsSource for StatsBook {
    fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats> {
        let (mut stats, mut latencies) = {
            let map = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
            let aggs = map.get(model)?;
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
                "m",
                &["math".into()],
                Some(i as f64 * 10.0),
                Some(i % 2 == 0),
            );
        }
        book.add("m", &[], Some(1000.0), None);
        let s = book.query("m", None).unwrap();
        assert_eq!(s.attempts, 11);
        assert!((s.success_rate - 0.5).abs() < 1e-9);
        assert_eq!(s.latency_p50_ms, 50.0);
        assert_eq!(s.latency_p95_ms, 1000.0);
        assert_eq!(book.query("m", Some("math")).unwrap().attempts, 10);
        assert!(book.query("m", Some("code")).is_none());
        book.feedback("m", &[], true);
        assert!(book.query("m", None).unwrap().success_rate > 0.5);
        book.feedback("m", &["math".into()], false);
        assert!(book.query("m", Some("math")).unwrap().success_rate < 0.5);
        assert!(book.query("other", None).is_none());
    }

    #[test]
    fn percentiles_by_nearest_rank_in_any_arrival_order() {
        let book = StatsBook::new();
        // 1..=101 ms, shuffled deterministically.
        for i in 0..101u64 {
            book.add("m", &[], Some(((i * 37) % 101 + 1) as f64), None);
        }
        let s = book.query("m", None).unwrap();
        assert_eq!((s.latency_p50_ms, s.latency_p95_ms), (51.0, 96.0));
        // Only the newest WINDOW latencies count.
        for _ in 0..WINDOW {
            book.add("m", &[], Some(7.0), None);
        }
        let s = book.query("m", None).unwrap();
        assert_eq!((s.latency_p50_ms, s.latency_p95_ms), (7.0, 7.0));
    }
}
