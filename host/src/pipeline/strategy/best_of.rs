//! `best_of`: k samples (round-robin over `models`), each verified; the best is chosen,
//! after the first verifier's cross-candidate `select` step when `select = true`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{verifier_uses, Strategy, Visitor, DEFAULT_THRESHOLD};
use crate::pipeline::context::Step;
use crate::pipeline::error::ExecError;
use crate::pipeline::model_call::Sampled;
use crate::pipeline::plugin_logs::emit_logs;
use crate::pipeline::request::Answer;
use crate::pipeline::spec::{check_threshold, check_verifiers, SampleMode, VerifierRef, MAX_K};
use crate::pipeline::verify::Judgement;
use crate::runtime::types::{Judged, PluginKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestOf {
    pub models: Vec<String>,
    pub k: u32,
    #[serde(default)]
    pub verify: Vec<VerifierRef>,
    #[serde(default)]
    pub select: bool,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub mode: SampleMode,
}

impl Strategy for BestOf {
    fn check(&self) -> Result<(), String> {
        if self.models.is_empty() || self.k == 0 {
            return Err("best_of needs at least one model and k >= 1".into());
        }
        if self.k > MAX_K {
            return Err(format!(
                "best_of k = {} is above the limit of {MAX_K}",
                self.k
            ));
        }
        check_verifiers(&self.verify)?;
        check_threshold(self.threshold)
    }

    fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        for m in &self.models {
            visitor.model(m);
        }
        verifier_uses(&self.verify, visitor);
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        Draw {
            models: &self.models,
            k: self.k,
            verify: &self.verify,
            select: self.select,
            threshold: self.threshold.unwrap_or(DEFAULT_THRESHOLD),
            mode: self.mode,
        }
        .run(at)
        .await
    }
}

/// Samples to draw and judge, and how: a `best_of` node, or a router's step.
pub(crate) struct Draw<'a> {
    pub(crate) models: &'a [String],
    pub(crate) k: u32,
    pub(crate) verify: &'a [VerifierRef],
    pub(crate) select: bool,
    pub(crate) threshold: f64,
    pub(crate) mode: SampleMode,
}

impl Draw<'_> {
    pub(crate) async fn run(self, at: Step<'_>) -> Result<Answer, ExecError> {
        let Draw {
            models,
            k,
            verify,
            select,
            threshold,
            mode,
        } = self;
        let (engine, ctx, task, path) = (at.engine, at.ctx, at.task, at.path.as_str());
        if models.is_empty() || k == 0 {
            return Err(ExecError::Invalid(
                "best_of needs at least one model and k >= 1".into(),
            ));
        }
        let model_of = |i: u32| &models[i as usize % models.len()];
        // Sequential sampling stops at the first accepted answer (cheapest), but costs
        // k x latency in the worst case; a deadline that cannot afford that, or a
        // cross-candidate step that needs every candidate, switches to parallel.
        // The top `n` answers (a root best_of) need every sample.
        let wanted = if at.depth == 0 { ctx.n.max(1) } else { 1 };
        let parallel = match mode {
            _ if wanted > 1 => true,
            SampleMode::Parallel => true,
            SampleMode::Sequential => select,
            SampleMode::Auto => {
                select
                    || ctx.budget.remaining().is_some_and(|left| {
                        let worst: Duration = (0..k)
                            .map(|i| engine.expected_latency(&ctx.tenant, model_of(i)))
                            .sum();
                        left < worst
                    })
            }
        };
        let one = |i: u32| {
            let p = format!("{path}/best_of[{i}]");
            async move {
                let s = engine
                    .call_model(ctx, &p, model_of(i), task, &ctx.sampling)
                    .await?
                    .0;
                let j = if verify.is_empty() {
                    None
                } else {
                    Some(engine.judge(ctx, &p, task, &s, verify, threshold).await?)
                };
                Ok::<_, ExecError>((s, j))
            }
        };
        let mut done: Vec<(Sampled, Option<Judgement>)> = Vec::new();
        let mut first_error = None;
        if parallel {
            for r in futures::future::join_all((0..k).map(one)).await {
                match r {
                    Ok(x) => done.push(x),
                    Err(e @ ExecError::OverBudget(_))
                        if done.is_empty() && first_error.is_none() =>
                    {
                        first_error = Some(e)
                    }
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        } else {
            for i in 0..k {
                match one(i).await {
                    Ok((s, j)) => {
                        let stop = j.as_ref().is_some_and(|j| j.accepted) || verify.is_empty();
                        done.push((s, j));
                        if stop {
                            break;
                        }
                    }
                    Err(e @ ExecError::OverBudget(_)) => {
                        first_error = Some(e);
                        break;
                    }
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        }
        if done.is_empty() {
            return Err(
                first_error.unwrap_or_else(|| ExecError::NoAnswer("no sample succeeded".into()))
            );
        }
        let mut scores: Vec<f64> = done
            .iter()
            .map(|(_, j)| j.as_ref().map_or(0.0, |j| j.score))
            .collect();
        // Whether the cross-candidate step ranked the candidates: then its ranking is the
        // order, and acceptance only breaks its ties (CodeT's winner with noisy generated
        // tests often passes under the acceptance share of them).
        let mut selected = false;
        if select && !verify.is_empty() {
            let v = &verify[0];
            let entry = engine.plugin(ctx, &v.plugin, PluginKind::Verifier)?;
            let judged: Vec<Judged> = done
                .iter()
                .map(|(s, j)| Judged {
                    candidate: s.candidate(),
                    verdict: j.as_ref().and_then(|j| j.primary.clone()),
                })
                .collect();
            match entry
                .plugin
                .select(
                    &engine.merged(entry, &v.config),
                    task,
                    &judged,
                    engine.plugin_ctx(ctx, path, entry),
                )
                .await
            {
                Ok(o) => {
                    emit_logs(&v.plugin, &o.stats.logs);
                    // The runtime checked there is one score per candidate.
                    selected = true;
                    scores = o.value.scores
                }
                // Without the cross-candidate step, fall back to individual scores.
                Err(e) => {
                    tracing::warn!(plugin = %v.plugin, error = %e, "select failed; using individual scores")
                }
            }
        }
        // Best first: by the selection's score when it ranked them, accepted first
        // between equals; otherwise accepted before not, then by score. Then in
        // sampling order.
        let mut order: Vec<usize> = (0..done.len()).collect();
        order.sort_by(|&a, &b| {
            let accepted = |i: usize| done[i].1.as_ref().is_some_and(|j| j.accepted);
            let by_score = scores[b].total_cmp(&scores[a]);
            let by_acceptance = accepted(b).cmp(&accepted(a));
            if selected {
                by_score.then(by_acceptance)
            } else {
                by_acceptance.then(by_score)
            }
            .then(a.cmp(&b))
        });
        let mut slots: Vec<Option<(Sampled, Option<Judgement>)>> =
            done.into_iter().map(Some).collect();
        let mut ranked = order
            .into_iter()
            .filter_map(|i| slots[i].take())
            .map(|(s, j)| {
                s.answer(
                    j.as_ref().is_none_or(|j| j.accepted),
                    j.is_some(),
                    j.as_ref().map(|j| j.score),
                )
            });
        let Some(mut best) = ranked.next() else {
            return Err(ExecError::NoAnswer("no sample succeeded".into()));
        };
        // With `n` > 1, the next accepted answers follow the best.
        best.alternatives = ranked
            .filter(|a| a.accepted)
            .take(wanted as usize - 1)
            .collect();
        Ok(best)
    }
}
