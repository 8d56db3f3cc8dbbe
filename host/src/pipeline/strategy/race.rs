//! `race`: branches in parallel (or `k` samples of `models`); the first accepted answer
//! wins and the others are cancelled. With `hedge_after_ms`, branch i starts only after
//! i x that delay, and only if no answer has been accepted yet.

use std::ops::ControlFlow;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{verifier_uses, BestSoFar, Node, Single, Strategy, Visitor};
use crate::pipeline::context::Step;
use crate::pipeline::error::ExecError;
use crate::pipeline::request::Answer;
use crate::pipeline::spec::{check_threshold, check_verifiers, VerifierRef, MAX_K};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Race {
    #[serde(default)]
    pub branches: Vec<Node>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub k: u32,
    #[serde(default)]
    pub verify: Vec<VerifierRef>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub hedge_after_ms: Option<u64>,
}

impl Strategy for Race {
    fn check(&self) -> Result<(), String> {
        if self.branches.is_empty() && (self.models.is_empty() || self.k == 0) {
            return Err("race needs branches, or models and k >= 1".into());
        }
        if self.k > MAX_K {
            return Err(format!("race k = {} is above the limit of {MAX_K}", self.k));
        }
        check_verifiers(&self.verify)?;
        check_threshold(self.threshold)
    }

    fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        verifier_uses(&self.verify, visitor);
        for m in &self.models {
            visitor.model(m);
        }
    }

    fn children(&self) -> Vec<&Node> {
        self.branches.iter().collect()
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        let sampled: Vec<Node>;
        let branches: &[Node] = if self.branches.is_empty() {
            if self.models.is_empty() || self.k == 0 {
                return Err(ExecError::Invalid(
                    "race needs branches, or models and k >= 1".into(),
                ));
            }
            sampled = (0..self.k as usize)
                .map(|i| {
                    Node::Single(Single {
                        model: self.models[i % self.models.len()].clone(),
                        verify: self.verify.clone(),
                        threshold: self.threshold,
                    })
                })
                .collect();
            &sampled
        } else {
            &self.branches
        };
        let hedge = self.hedge_after_ms.map(Duration::from_millis);
        let mut running: FuturesUnordered<_> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let here = at.at(format!("{}/race[{i}]", at.path));
                async move {
                    if let Some(h) = hedge {
                        // Backup branches start only if nothing has won by then.
                        tokio::time::sleep(h * i as u32).await;
                    }
                    b.run(here).await
                }
            })
            .collect();
        let mut so_far = BestSoFar::default();
        while let Some(result) = running.next().await {
            // Returning drops `running`, which cancels every branch still in flight.
            if let ControlFlow::Break(r) = so_far.take(result, |a| a.accepted, false) {
                return r;
            }
        }
        so_far.finish("race has no branches")
    }
}
