//! `cascade`: steps in order, escalating while the step's answer is not accepted
//! (FrugalGPT).

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::{BestSoFar, Node, Strategy};
use crate::pipeline::context::Step;
use crate::pipeline::error::ExecError;
use crate::pipeline::request::Answer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cascade {
    pub steps: Vec<Node>,
}

impl Strategy for Cascade {
    fn check(&self) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("cascade has no steps".into());
        }
        Ok(())
    }

    fn children(&self) -> Vec<&Node> {
        self.steps.iter().collect()
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        let mut so_far = BestSoFar::default();
        for (i, step) in self.steps.iter().enumerate() {
            let result = step.run(at.at(format!("{}/cascade[{i}]", at.path))).await;
            if let ControlFlow::Break(r) = so_far.take(result, |a| a.accepted, true) {
                return r;
            }
        }
        so_far.finish("cascade has no steps")
    }
}
