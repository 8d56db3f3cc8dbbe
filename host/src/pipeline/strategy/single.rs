//! `single`: one model call, optionally verified.

use serde::{Deserialize, Serialize};

use super::{verifier_uses, Strategy, Visitor, DEFAULT_THRESHOLD};
use crate::pipeline::context::Step;
use crate::pipeline::error::ExecError;
use crate::pipeline::request::{Answer, DeltaSink};
use crate::pipeline::spec::{check_threshold, check_verifiers, VerifierRef};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Single {
    pub model: String,
    #[serde(default)]
    pub verify: Vec<VerifierRef>,
    /// Combined verifier score an answer needs to be accepted (default 0.5).
    #[serde(default)]
    pub threshold: Option<f64>,
}

impl Single {
    /// A plain call of `model`, as a request naming a model runs.
    pub fn model(model: &str) -> Single {
        Single {
            model: model.into(),
            verify: vec![],
            threshold: None,
        }
    }

    /// The unverified call of a pass-through request, its answer streamed to `sink` as
    /// the upstream generates it.
    pub(crate) async fn stream(&self, at: Step<'_>, sink: DeltaSink) -> Result<Answer, ExecError> {
        let (s, _) = at
            .engine
            .stream_model(at.ctx, &at.path, &self.model, at.task, sink)
            .await?;
        at.engine
            .judged_answer(at.ctx, &at.path, at.task, s, &[], DEFAULT_THRESHOLD)
            .await
    }
}

impl Strategy for Single {
    fn check(&self) -> Result<(), String> {
        check_verifiers(&self.verify)?;
        check_threshold(self.threshold)
    }

    fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        visitor.model(&self.model);
        verifier_uses(&self.verify, visitor);
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        // `n` choices of one call, for the unverified root only (`Engine::answers_n`).
        let n = match at.depth == 0 && self.verify.is_empty() {
            true => at.ctx.n,
            false => 1,
        };
        let (s, _) = at
            .engine
            .call_model_n(at.ctx, &at.path, &self.model, at.task, &at.ctx.sampling, n)
            .await?;
        at.engine
            .judged_answer(
                at.ctx,
                &at.path,
                at.task,
                s,
                &self.verify,
                self.threshold.unwrap_or(DEFAULT_THRESHOLD),
            )
            .await
    }
}
