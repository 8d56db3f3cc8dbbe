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

    fn stats(&self) -> ModelStats {
        let mut l: Vec<f64> = self.latencies.iter().copied().collect();
        l.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            if l.is_empty() {
                0.0
            } else {
                l[((l.len() - 1) as f64 * q).round() as usize]
            }
        };
        ModelStats {
            attempts: self.attempts,
            success_rate: if self.judged == 0 {
                0.0
            } else {
                self.successes as f64 / self.judged as f64
            },
            latency_p50_ms: pct(0.5),
            latency_p95_ms: pct(0.95),
        }
    }
}

#[derive(Default)]
pub struct StatsBook {
    by_key: Mutex<HashMap<(String, Option<String>), Agg>>,
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
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((model.to_string(), None))
            .or_default()
            .add(latency_ms, success);
        for t in tags {
            map.entry((model.to_string(), Some(t.clone())))
                .or_default()
                .add(latency_ms, success);
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
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        let mut bump = |key: (String, Option<String>)| {
            let agg = map.entry(key).or_default();
            agg.judged += 1;
            agg.successes += u64::from(correct);
        };
        bump((model.to_string(), None));
        for t in tags {
            bump((model.to_string(), Some(t.clone())));
        }
    }
}

impl StatsSource for StatsBook {
    fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats> {
        let map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(model.to_string(), tag.map(String::from)))
            .map(Agg::stats)
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
        assert_eq!(book.query("m", Some("math")).unwrap().attempts, 10);
        assert!(book.query("m", Some("code")).is_none());
        book.feedback("m", &[], true);
        assert!(book.query("m", None).unwrap().success_rate > 0.5);
    }
}
