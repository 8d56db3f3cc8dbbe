//! A learned acceptance score: logistic regression over features of the question and of
//! the answer's own checks. The weights are configuration (`weights`), fitted offline on
//! labelled answers (see `bench/selection/gsm8k_cascade.py`); the verifier then accepts
//! an answer when its estimated probability of being right reaches `accept-probability`,
//! so one plugin gives a whole cost/accuracy curve by its threshold.

use crate::steps::{analyze, unused_quantities, Analysis};
use crate::{arith, states};

/// Feature names, in the order `features` returns them and `weights` lists them (after
/// the intercept).
pub const FEATURES: [&str; 16] = [
    "truncated",
    "no-final-answer",
    "final-not-whole",
    "any-wrong-step",
    "wrong-step-share",
    "log-steps",
    "no-steps",
    "final-not-last-step",
    "unused-question-numbers",
    "log-question-numbers",
    "log-question-chars",
    "log-answer-chars",
    "final-marker",
    "log-final-magnitude",
    "final-in-question",
    "answer-per-question-chars",
];

/// The features of `answer` to `question`, named by `FEATURES`.
pub fn features(question: &str, answer: &str, tolerance: f64) -> [f64; FEATURES.len()] {
    let a: Analysis = analyze(answer, tolerance);
    let unused = unused_quantities(question, answer).len() as f64;
    let question_numbers = analyze_numbers(question);
    let wrong = a.steps.iter().filter(|s| !s.correct).count() as f64;
    let total = a.steps.len() as f64;
    let off_last = match (a.steps.last(), a.final_answer) {
        (Some(last), Some(answer)) => !states(last.shown, answer, tolerance),
        _ => false,
    };
    let final_in_question = a.final_answer.is_some_and(|f| {
        crate::scan::numbers(question)
            .filter_map(|s| crate::steps::parse_num(s.of(question).trim_start_matches('-')))
            .any(|q| arith::close(q, f, tolerance))
    });
    let b = |x: bool| f64::from(u8::from(x));
    let qc = question.chars().count() as f64;
    let ac = answer.chars().count() as f64;
    [
        b(a.truncated),
        b(a.final_answer.is_none()),
        b(a.final_answer.is_some_and(|f| f.fract() != 0.0)),
        b(wrong > 0.0),
        if total > 0.0 { wrong / total } else { 0.0 },
        total.ln_1p(),
        b(total == 0.0),
        b(off_last),
        unused,
        question_numbers.ln_1p(),
        qc.ln_1p(),
        ac.ln_1p(),
        b(a.marked),
        a.final_answer.map_or(0.0, |f| f.abs().ln_1p()),
        b(final_in_question),
        ac / qc.max(1.0),
    ]
}

fn analyze_numbers(text: &str) -> f64 {
    crate::scan::numbers(text).count() as f64
}

/// Logistic regression: an intercept, then one weight per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub intercept: f64,
    pub weights: [f64; FEATURES.len()],
}

impl Model {
    /// Parses `b,w1,...,wN` (comma- or space-separated).
    pub fn parse(text: &str) -> Result<Model, String> {
        let values: Vec<f64> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<f64>().map_err(|e| format!("`{s}`: {e}")))
            .collect::<Result<_, _>>()?;
        if values.len() != FEATURES.len() + 1 {
            return Err(format!(
                "expected {} numbers (the intercept, then one weight per feature: {}), got {}",
                FEATURES.len() + 1,
                FEATURES.join(", "),
                values.len()
            ));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err("weights must be finite".into());
        }
        let mut weights = [0.0; FEATURES.len()];
        weights.copy_from_slice(&values[1..]);
        Ok(Model {
            intercept: values[0],
            weights,
        })
    }

    /// The estimated probability that the answer is right.
    pub fn probability(&self, x: &[f64; FEATURES.len()]) -> f64 {
        let z = self.intercept + self.weights.iter().zip(x).map(|(w, x)| w * x).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_a_clean_and_a_wrong_answer() {
        let q = "Janet has 16 eggs and eats 3. How many are left?";
        let good = features(q, "16 - 3 = 13\n#### 13", 1e-4);
        let bad = features(q, "16 - 3 = 12\n#### 12", 1e-4);
        let at = |name: &str| FEATURES.iter().position(|f| *f == name).unwrap();
        assert_eq!(good[at("any-wrong-step")], 0.0);
        assert_eq!(bad[at("any-wrong-step")], 1.0);
        assert_eq!(good[at("final-marker")], 1.0);
        assert_eq!(good[at("unused-question-numbers")], 0.0);
    }

    #[test]
    fn weights_parse_and_score() {
        let n = FEATURES.len();
        let text = std::iter::once("0.5".to_string())
            .chain((0..n).map(|_| "0".to_string()))
            .collect::<Vec<_>>()
            .join(",");
        let m = Model::parse(&text).unwrap();
        let p = m.probability(&[0.0; FEATURES.len()]);
        assert!((p - 1.0 / (1.0 + (-0.5f64).exp())).abs() < 1e-12);
        assert!(Model::parse("1,2").is_err());
        assert!(Model::parse(&text.replace("0.5", "nan")).is_err());
    }
}
