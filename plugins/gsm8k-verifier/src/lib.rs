//! GSM8K-style math verifier: a real, non-oracle signal for grade-school math answers.
//!
//! It never sees the reference answer. It checks that
//! 1. the answer states a final number (`#### 18`, "the answer is 18", or a last number),
//! 2. the answer is not cut off (an unclosed `<<` annotation, a dangling operator),
//! 3. every calculation the answer shows is right: `<<48/2=24>>` annotations and inline
//!    steps such as `16 - 3 = 13` or `9 * $2 = $18` are re-evaluated.
//!
//! A wrong step rejects the candidate; so does a missing final answer or a cut-off text.
//! With `require-question-numbers`, so does an answer that never mentions a quantity the
//! question states (it likely left that quantity out of its reasoning). With
//! `final-from-last-step`, so does an answer whose final number is not what its last
//! calculation gave (it skipped or redid work it does not show); with
//! `require-final-marker`, one without the `#### N` line a GSM8K-style prompt asks for (a
//! model that leaves its format has often rambled or stopped early).
//!
//! With `weights`, a logistic regression over features of the question and of these
//! checks (`learned.rs`) estimates the probability the answer is right, and the verdict
//! accepts at `accept-probability` or above: one threshold trades accuracy for cost in a
//! cascade.

use arbiter_sdk::prelude::*;

mod arith;
mod labelled;
pub mod learned;
mod scan;
mod steps;

pub use steps::{analyze, unused_quantities, Analysis};

struct MathVerifier {
    tolerance: f64,
    require_steps: bool,
    integer_answer: bool,
    require_question_numbers: bool,
    final_from_last_step: bool,
    require_final_marker: bool,
    /// The learned score and its acceptance threshold, when `weights` is set.
    learned: Option<(learned::Model, f64)>,
}

impl Verifier for MathVerifier {
    fn info() -> PluginInfo {
        PluginInfo::verifier(
            "gsm8k-verifier",
            env!("CARGO_PKG_VERSION"),
            "Re-checks the arithmetic a math answer shows and that it states a final number",
        )
        .stateless()
        .config_key(
            "tolerance",
            "Relative tolerance when comparing a step's result",
            Some("0.0001"),
        )
        .config_key(
            "integer-answer",
            "Reject final answers that are not whole numbers (GSM8K answers always are)",
            Some("true"),
        )
        .config_key(
            "require-steps",
            "Reject answers that show no checkable calculation",
            Some("false"),
        )
        .config_key(
            "require-question-numbers",
            "Reject answers that never mention a number the question states",
            Some("false"),
        )
        .config_key(
            "final-from-last-step",
            "Reject answers whose final number is not the result of their last calculation",
            Some("false"),
        )
        .config_key(
            "require-final-marker",
            "Reject answers without a `#### N` final-answer line",
            Some("false"),
        )
        .config_key(
            "weights",
            "Logistic-regression weights (intercept, then one per feature of learned.rs); \
             when set, the estimated probability of a right answer decides",
            None,
        )
        .config_key(
            "accept-probability",
            "With `weights`: accept when the estimated probability is at least this",
            Some("0.5"),
        )
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        config.deny_unknown(&[
            "tolerance",
            "require-steps",
            "integer-answer",
            "require-question-numbers",
            "final-from-last-step",
            "require-final-marker",
            "weights",
            "accept-probability",
        ])?;
        let tolerance: f64 = config.parse_or("tolerance", 1e-4)?;
        if !(0.0..1.0).contains(&tolerance) {
            return Err(PluginError::InvalidConfig(format!(
                "tolerance {tolerance} is outside [0, 1)"
            )));
        }
        let learned = match config.get("weights") {
            None => None,
            Some(text) => {
                let model = learned::Model::parse(text)
                    .map_err(|e| PluginError::InvalidConfig(format!("weights: {e}")))?;
                let at: f64 = config.parse_or("accept-probability", 0.5)?;
                if !(0.0..=1.0).contains(&at) {
                    return Err(PluginError::InvalidConfig(format!(
                        "accept-probability {at} is outside [0, 1]"
                    )));
                }
                Some((model, at))
            }
        };
        Ok(MathVerifier {
            learned,
            tolerance,
            require_steps: config.parse_or("require-steps", false)?,
            integer_answer: config.parse_or("integer-answer", true)?,
            require_question_numbers: config.parse_or("require-question-numbers", false)?,
            final_from_last_step: config.parse_or("final-from-last-step", false)?,
            require_final_marker: config.parse_or("require-final-marker", false)?,
        })
    }

    fn verify(&self, task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let a = analyze(&candidate.text, self.tolerance);
        let unused = if self.require_question_numbers {
            unused_quantities(task.prompt(), &candidate.text)
        } else {
            Vec::new()
        };
        let mut checks: Vec<Check> = a
            .steps
            .iter()
            .map(|s| Check {
                name: s.text.clone(),
                passed: s.correct,
                message: (!s.correct).then(|| format!("evaluates to {}", fmt_num(s.actual))),
            })
            .collect();
        if self.require_question_numbers {
            checks.push(Check {
                name: "uses every number the question states".into(),
                passed: unused.is_empty(),
                message: (!unused.is_empty()).then(|| format!("never uses {}", unused.join(", "))),
            });
        }
        // The last calculation in the text, when the answer states something else.
        let off_last = match (self.final_from_last_step, a.steps.last(), a.final_answer) {
            (true, Some(last), Some(answer)) if !states(last.shown, answer, self.tolerance) => {
                Some(last)
            }
            _ => None,
        };
        if self.final_from_last_step {
            checks.push(Check {
                name: "the final answer is the last calculation's result".into(),
                passed: off_last.is_none(),
                message: off_last
                    .map(|s| format!("the last calculation gives {}", fmt_num(s.shown))),
            });
        }
        if self.require_final_marker {
            checks.push(Check {
                name: "a `#### N` final-answer line".into(),
                passed: a.marked,
                message: (!a.marked).then(|| "missing".to_string()),
            });
        }
        let wrong = a.steps.iter().filter(|s| !s.correct).count();
        let total = a.steps.len();
        let details = format!(
            "{{\"final_answer\":{},\"steps\":{total},\"wrong_steps\":{wrong},\"truncated\":{}}}",
            a.final_answer.map(fmt_num).unwrap_or_else(|| "null".into()),
            a.truncated
        );
        let verdict = if let Some((model, at)) = &self.learned {
            let p = model.probability(&learned::features(
                task.prompt(),
                &candidate.text,
                self.tolerance,
            ));
            if p >= *at {
                Verdict::accept(
                    p,
                    format!("estimated {p:.2} likely right (accepts at {at})"),
                )
            } else {
                Verdict::reject(
                    p,
                    format!("estimated {p:.2} likely right (accepts at {at})"),
                )
            }
        } else if a.truncated {
            Verdict::reject(0.1, "the answer is cut off")
        } else if a.final_answer.is_none() {
            Verdict::reject(0.1, "no final numeric answer")
        } else if self.require_final_marker && !a.marked {
            Verdict::reject(0.2, "no `#### N` final-answer line")
        } else if self.integer_answer && a.final_answer.is_some_and(|f| f.fract() != 0.0) {
            Verdict::reject(0.2, "the final answer is not a whole number")
        } else if wrong > 0 {
            let first = a.steps.iter().find(|s| !s.correct).expect("a wrong step");
            Verdict::reject(
                0.5 * (total - wrong) as f64 / total as f64,
                format!(
                    "{wrong} of {total} calculations are wrong, e.g. `{}`",
                    first.text
                ),
            )
        } else if let Some(last) = off_last {
            Verdict::reject(
                0.3,
                format!(
                    "the final answer is not the result of the last calculation `{}`",
                    last.text
                ),
            )
        } else if !unused.is_empty() {
            Verdict::reject(
                0.3,
                format!(
                    "the answer never uses {} from the question",
                    unused.join(", ")
                ),
            )
        } else if total == 0 {
            if self.require_steps {
                Verdict::reject(0.4, "no calculation to check")
            } else {
                Verdict::accept(0.6, "final answer present; no calculation to check")
            }
        } else {
            Verdict::accept(
                1.0,
                format!("final answer present; all {total} calculations check out"),
            )
        };
        Ok(verdict.with_checks(checks).with_details(details))
    }

    /// Majority vote over final answers, weighted by each candidate's own score:
    /// self-consistency with a penalty for answers whose arithmetic is wrong.
    fn select(&self, _task: &Task, candidates: &[Judged]) -> Result<Selection, PluginError> {
        let answers: Vec<Option<f64>> = candidates
            .iter()
            .map(|j| analyze(&j.candidate.text, self.tolerance).final_answer)
            .collect();
        let total: f64 = candidates
            .iter()
            .map(Judged::score)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        let scores = candidates
            .iter()
            .zip(&answers)
            .map(|(j, answer)| {
                let Some(answer) = answer else { return 0.0 };
                let support: f64 = candidates
                    .iter()
                    .zip(&answers)
                    .filter(|(_, other)| {
                        other.is_some_and(|o| arith::close(o, *answer, self.tolerance))
                    })
                    .map(|(k, _)| k.score())
                    .sum();
                (support / total).min(1.0) * j.score()
            })
            .collect();
        Ok(Selection {
            scores,
            reason: "score-weighted vote over final answers".into(),
        })
    }
}

/// Whether `answer` states the value `result`: the same number, or a fraction given as a
/// percentage (`7/20 = 0.35`, so 35%).
pub(crate) fn states(result: f64, answer: f64, tolerance: f64) -> bool {
    arith::close(result, answer, tolerance) || arith::close(result * 100.0, answer, tolerance)
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

arbiter_sdk::export_verifier!(MathVerifier);
