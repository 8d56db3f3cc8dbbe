//! Verdicts kept for reuse within one evaluation run. A verifier without granted
//! capabilities is deterministic for a given component, configuration, task and
//! candidate text (its budgets count steps, not time), so pipelines that judge the same
//! sampled candidates can share one verification: comparing five pipelines over a
//! replay dataset then costs about one pass of verification, not five.
//!
//! A call that ran past its deadline is kept as such too: run again it would most likely
//! do the same, at the full deadline's cost, for every pipeline.
//!
//! Only `arbiter eval` turns it on; the gateway never shares verdicts between requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::runtime::types::{Candidate, PluginConfig, Task, Verdict};

/// Verdicts kept at most; past it, new ones are not kept (an eval of 100 samples x
/// 1,000 tasks x a few verifiers fits).
const MAX_ENTRIES: usize = 1 << 20;

/// What one judgement gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Kept {
    Verdict(Verdict),
    /// The call exceeded this deadline.
    PastDeadline(Duration),
}

#[derive(Default)]
pub struct VerdictMemo {
    entries: Mutex<HashMap<[u8; 32], Kept>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VerdictMemo {
    pub fn new() -> VerdictMemo {
        VerdictMemo::default()
    }

    /// What a verdict depends on: the component (by digest), its merged settings, the
    /// task, and the candidate but for its index (the same text sampled at another
    /// position is the same input).
    pub fn key(
        digest: &str,
        config: &PluginConfig,
        task: &Task,
        candidate: &Candidate,
    ) -> Option<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(digest.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(config).ok()?);
        h.update([0]);
        h.update(serde_json::to_vec(task).ok()?);
        h.update([0]);
        let unindexed = Candidate {
            index: 0,
            ..candidate.clone()
        };
        h.update(serde_json::to_vec(&unindexed).ok()?);
        Some(h.finalize().into())
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Kept> {
        let found = self.entries.lock().ok()?.get(key).cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether a verdict is kept for `key` (not counted as a reuse).
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.lock().is_ok_and(|e| e.contains_key(key))
    }

    pub fn put(&self, key: [u8; 32], kept: Kept) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() < MAX_ENTRIES {
                entries.insert(key, kept);
            }
        }
    }

    /// Keeps what a call gave, if it is worth keeping: a verdict, or a missed deadline.
    pub fn keep(
        &self,
        key: [u8; 32],
        result: &Result<crate::runtime::Outcome<Verdict>, crate::runtime::Error>,
    ) {
        match result {
            Ok(o) => self.put(key, Kept::Verdict(o.value.clone())),
            Err(crate::runtime::Error::DeadlineExceeded(d)) => {
                self.put(key, Kept::PastDeadline(*d))
            }
            Err(_) => {}
        }
    }

    /// (verifications reused, verifications run).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::Decision;

    #[test]
    fn the_same_input_at_another_index_hits_and_anything_else_misses() {
        let memo = VerdictMemo::new();
        let task = Task::from_prompt("t", "question");
        let config = PluginConfig::from([("a".to_string(), "1".to_string())]);
        let cand = |index: u32, text: &str| Candidate {
            index,
            model: "m".into(),
            text: text.into(),
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
        };
        let verdict = Verdict {
            score: 1.0,
            decision: Decision::Accept,
            reason: "ok".into(),
            checks: Vec::new(),
            details: None,
        };
        let key = VerdictMemo::key("sha256:x", &config, &task, &cand(3, "a")).unwrap();
        assert!(memo.get(&key).is_none());
        memo.put(key, Kept::Verdict(verdict.clone()));
        let again = VerdictMemo::key("sha256:x", &config, &task, &cand(7, "a")).unwrap();
        assert_eq!(memo.get(&again), Some(Kept::Verdict(verdict)));
        for other in [
            VerdictMemo::key("sha256:y", &config, &task, &cand(3, "a")),
            VerdictMemo::key("sha256:x", &PluginConfig::new(), &task, &cand(3, "a")),
            VerdictMemo::key(
                "sha256:x",
                &config,
                &Task::from_prompt("t", "other"),
                &cand(3, "a"),
            ),
            VerdictMemo::key("sha256:x", &config, &task, &cand(3, "b")),
        ] {
            assert!(memo.get(&other.unwrap()).is_none());
        }
        assert_eq!(memo.counts(), (1, 5));
    }

    #[test]
    fn a_missed_deadline_is_kept_and_other_failures_are_not() {
        use crate::runtime::Error;
        let memo = VerdictMemo::new();
        let late = Duration::from_millis(500);
        memo.keep([1; 32], &Err(Error::DeadlineExceeded(late)));
        memo.keep([2; 32], &Err(Error::Internal("flaky".into())));
        assert_eq!(memo.get(&[1; 32]), Some(Kept::PastDeadline(late)));
        assert_eq!(memo.get(&[2; 32]), None);
    }
}
