//! Finds the calculations and the final answer in a free-text math solution.

use crate::arith::{close, eval, matches_shown};
use crate::labelled;
use crate::scan::{self, Span};

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Byte offset of the step's result in the answer: which step came last.
    pub at: usize,
    pub text: String,
    pub actual: f64,
    pub shown: f64,
    pub correct: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub steps: Vec<Step>,
    pub final_answer: Option<f64>,
    /// The final answer came from a `#### N` line, the format GSM8K's few-shot prompt asks for.
    pub marked: bool,
    pub truncated: bool,
}

/// The quantities a question states (as digits) that its answer never mentions, in the
/// question's order. A percentage also counts as used when the answer writes it as a
/// fraction (`25%` as `0.25`); a fraction (`1/4`) when the answer writes its value or its
/// denominator (`20/4`, `3/4`). Clock times (`5 PM`, `1:00`) are not quantities: answers
/// turn them into durations.
pub fn unused_quantities(question: &str, answer: &str) -> Vec<String> {
    let used: Vec<f64> = scan::numbers(answer)
        .filter_map(|s| parse_num(s.of(answer)))
        .map(f64::abs)
        .collect();
    let mentions = |v: f64| used.iter().any(|u| (u - v).abs() < 1e-9);
    let spans: Vec<Span> = scan::numbers(question).collect();
    let mut unused: Vec<String> = Vec::new();
    let mut k = 0;
    while k < spans.len() {
        let span = spans[k];
        k += 1;
        let text = span.of(question).trim_start_matches('-');
        let Some(value) = parse_num(text) else {
            continue;
        };
        let after = &question[span.end..];
        if is_clock_time(&question[..span.start], after) {
            continue;
        }
        // `a/b`: one quantity, its value a/b.
        let denominator = spans
            .get(k)
            .filter(|d| d.start == span.end + 1 && after.starts_with('/'))
            .and_then(|d| Some((*d, parse_num(d.of(question))?)));
        let (shown, found) = if let Some((d, b)) = denominator {
            k += 1;
            let fraction = value / b;
            (
                &question[span.start..d.end],
                b != 0.0 && (mentions(fraction) || mentions(fraction * 100.0) || mentions(b)),
            )
        } else {
            let percent = after.starts_with('%');
            (
                text,
                mentions(value) || (percent && mentions(value / 100.0)),
            )
        };
        if !found && !unused.iter().any(|t| t == shown) {
            unused.push(shown.to_string());
        }
    }
    unused
}

/// A number that is part of a time of day: `5 PM`, `9am`, `1:00`, or the `00` of it.
fn is_clock_time(before: &str, after: &str) -> bool {
    let after = after.trim_start_matches(' ').as_bytes();
    let hh_mm = after.len() >= 3 && after[0] == b':' && after[1..3].iter().all(u8::is_ascii_digit);
    hh_mm
        || before.ends_with(':')
        || ["am", "pm", "a.m.", "p.m."].iter().any(|m| {
            after.len() >= m.len()
                && after[..m.len()].eq_ignore_ascii_case(m.as_bytes())
                && !after.get(m.len()).is_some_and(u8::is_ascii_alphabetic)
        })
}

pub(crate) fn parse_num(s: &str) -> Option<f64> {
    s.replace(',', "").trim_end_matches('.').parse().ok()
}

pub fn analyze(text: &str, tolerance: f64) -> Analysis {
    // Markdown-escaped multiplication (`220 \* 40/100`) as plain `*`; same length, so
    // offsets stay those of the answer.
    let unescaped;
    let text = if text.as_bytes().contains(&b'\\') && text.contains("\\*") {
        unescaped = text.replace("\\*", " *");
        unescaped.as_str()
    } else {
        text
    };
    let mut steps = Vec::new();
    // Annotations first, then blank them out so inline matching does not count them twice.
    let annotations = scan::annotations(text);
    let mut prose = String::with_capacity(text.len());
    // (offset in `prose`, bytes removed before it): maps prose offsets back to the answer.
    let mut removed: Vec<(usize, usize)> = Vec::new();
    let mut copied = 0;
    for a in &annotations {
        let (lhs, rhs) = (a.lhs.of(text), a.rhs.of(text).trim());
        if let (Some(actual), Some(shown)) = (eval(lhs), parse_num(rhs.trim_start_matches('$'))) {
            steps.push(Step {
                at: a.rhs.start,
                text: format!("{}={}", lhs.trim(), rhs),
                actual,
                shown,
                correct: matches_shown(actual, shown, rhs, tolerance),
            });
        }
        prose.push_str(&text[copied..a.whole.start]);
        prose.push(' ');
        copied = a.whole.end;
        removed.push((prose.len(), copied - prose.len()));
    }
    prose.push_str(&text[copied..]);

    let in_answer = |at: usize| {
        at + removed
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .map_or(0, |(_, by)| *by)
    };

    // Resume each search at the step's result: in `3 + 4 = 7\n7 * 2 = 14` the `7` is
    // both the first step's result and the second step's first operand.
    let mut at = 0;
    while let Some(m) = scan::inline_step(&prose, at) {
        at = m.rhs.start;
        let (lhs, rhs, pct) = (m.lhs.of(&prose), m.rhs.of(&prose), m.percent.of(&prose));
        // A percentage on the left is ambiguous in prose ("20% of 50"): skip the step.
        // So is a left side that an operator precedes: it is the tail of an expression
        // with a term we cannot read (`x * 4 + 8 = 40`).
        if lhs.contains('%') || follows_operator(&prose[..m.lhs.start]) {
            continue;
        }
        let (Some(actual), Some(shown)) = (eval(lhs), parse_num(rhs)) else {
            continue;
        };
        // `9 * $2 = $<<9*2=18>>18` shows one calculation twice: count it once.
        if steps
            .iter()
            .any(|s| s.shown == shown && (s.actual - actual).abs() < 1e-9)
        {
            continue;
        }
        // `4 * 125 - 2 = 500 - 2 = 498` is two true equalities, not a wrong `= 500`: a
        // result that goes on as an expression up to the next `=` is that expression.
        let mut correct = matches_shown(actual, shown, rhs, tolerance);
        let mut written = format!("{} = {}{}", lhs.trim(), rhs, pct);
        let mut shown = shown;
        // A fraction as the result: `1/3 * 1/2 = 1/6`.
        if !correct && pct.is_empty() {
            let after = &prose[m.rhs.end..];
            if let Some((denominator, len)) = denominator(after) {
                if close(actual, shown / denominator, tolerance) {
                    correct = true;
                    shown /= denominator;
                    written = format!("{} = {}{}", lhs.trim(), rhs, &after[..len]);
                }
            }
        }
        if !correct && pct.is_empty() {
            let chained = scan::chained_rhs_end(&prose, m.rhs.end)
                .map(|end| &prose[m.rhs.start..end])
                .and_then(|expr| Some((expr, eval(expr)?)));
            if let Some((expr, value)) = chained {
                if close(actual, value, tolerance) {
                    correct = true;
                    shown = value;
                    written = format!("{} = {}", lhs.trim(), expr);
                }
            }
        }
        steps.push(Step {
            at: in_answer(m.rhs.start),
            text: written,
            actual,
            shown,
            correct,
        });
    }

    for l in labelled::labelled_steps(&prose, tolerance) {
        if steps
            .iter()
            .any(|s| s.shown == l.shown && (s.actual - l.actual).abs() < 1e-9)
        {
            continue;
        }
        steps.push(Step {
            at: in_answer(l.shown_start),
            text: format!("{} = {}", l.expr, &prose[l.shown_start..l.shown_end]),
            actual: l.actual,
            shown: l.shown,
            correct: true,
        });
    }

    steps.sort_by_key(|s| s.at);

    let number = |span: Option<Span>| span.and_then(|s| parse_num(s.of(text)));
    let marker = number(scan::final_marker(text));
    let marked = marker.is_some();
    let final_answer = marker
        .or_else(|| number(scan::answer_phrase(text)))
        .or_else(|| {
            let last_line = text.lines().rev().find(|l| !l.trim().is_empty())?;
            scan::last_number(last_line).and_then(|s| parse_num(s.of(last_line)))
        });

    Analysis {
        steps,
        final_answer,
        marked,
        truncated: is_truncated(text),
    }
}

/// Whether the text ends with an operator that would take the next number as its right
/// operand (white space aside). Not `-`: it is also a dash or a sign.
fn follows_operator(before: &str) -> bool {
    matches!(
        before.trim_end().chars().last(),
        Some('*' | '/' | '+' | '^' | '×' | '÷')
    )
}

/// `/6` right after a result written as a fraction (`1/6`): the denominator and the
/// length of `/6`.
fn denominator(after: &str) -> Option<(f64, usize)> {
    let digits = after.strip_prefix('/')?;
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    let d: f64 = digits[..len].parse().ok()?;
    (d != 0.0).then_some((d, len + 1))
}

/// Signs that generation stopped mid-answer (the token limit): an annotation left open,
/// or the text ending on an operator or an equals sign.
fn is_truncated(text: &str) -> bool {
    let t = text.trim_end();
    if let Some(open) = t.rfind("<<") {
        if !t[open..].contains(">>") {
            return true;
        }
    }
    matches!(
        t.chars().last(),
        Some('+' | '-' | '*' | '/' | '=' | 'x' | '(' | ',' | '$')
    ) && !t.ends_with("####")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correct_answer_with_annotations() {
        let a = analyze(
            "She sells these 9 eggs for 9 * $2 = $<<9*2=18>>18.\n#### 18",
            1e-4,
        );
        assert_eq!(a.final_answer, Some(18.0));
        assert!(!a.truncated);
        assert!(a.steps.iter().all(|s| s.correct), "{:?}", a.steps);
        assert!(!a.steps.is_empty());
    }

    #[test]
    fn wrong_inline_step() {
        let a = analyze("we divide: (12 / 20) x 100 = 55%.", 1e-4);
        assert_eq!(a.steps.len(), 1);
        assert!(!a.steps[0].correct);
    }

    #[test]
    fn thousands_separators() {
        let a = analyze("The total is $80,000 + $50,000 = $130,000.", 1e-4);
        assert_eq!(a.steps.len(), 1);
        assert!(a.steps[0].correct, "{:?}", a.steps);
        assert_eq!(a.final_answer, Some(130000.0));
    }

    #[test]
    fn chained_steps_on_consecutive_lines() {
        let a = analyze("3 + 4 = 7\n7 * 2 = 15\n15 - 1 = 14", 1e-4);
        assert_eq!(a.steps.len(), 3, "{:?}", a.steps);
        assert!(!a.steps[1].correct);
    }

    #[test]
    fn steps_are_in_text_order_with_offsets_in_the_answer() {
        let text = "16 - 3 = 13, 13 - 4 = 9; 9 * $2 = $<<9*2=18>>18, and 18 + 2 = 20.\n#### 20";
        let a = analyze(text, 1e-4);
        let shown: Vec<f64> = a.steps.iter().map(|s| s.shown).collect();
        assert_eq!(shown, [13.0, 9.0, 18.0, 20.0], "{:?}", a.steps);
        for s in &a.steps {
            let at = &text[s.at..];
            assert!(at.starts_with(&crate::fmt_num(s.shown)), "{s:?} at {at}");
        }
        assert!(a.marked);
        assert!(!analyze("2 + 2 = 4, so 4.", 1e-4).marked);
    }

    #[test]
    fn chains_of_equalities() {
        // Each link is a true equality.
        let a = analyze(
            "Alex weighs 4 * 125 - 2 = 500 - 2 = 498 pounds.\n#### 498",
            1e-4,
        );
        assert!(a.steps.iter().all(|s| s.correct), "{:?}", a.steps);
        assert_eq!(a.steps.last().map(|s| s.shown), Some(498.0));
        // The same with the GSM8K annotation in the middle of the chain.
        let a = analyze("4 * 125 - 2 = 500 - 2 = <<4*125-2=498>>498 pounds.", 1e-4);
        assert!(a.steps.iter().all(|s| s.correct), "{:?}", a.steps);
        // A running tally written as a chain still reads step by step.
        let a = analyze("3 + 4 = 7 * 2 = 14", 1e-4);
        assert!(a.steps.iter().all(|s| s.correct), "{:?}", a.steps);
        // A wrong link is still wrong either way.
        let a = analyze("4 * 125 - 2 = 500 - 3 = 497", 1e-4);
        assert!(a.steps.iter().any(|s| !s.correct), "{:?}", a.steps);
        // An expression that does not lead to another `=` is not a chain.
        let a = analyze("4 * 125 - 2 = 500 - 2 pounds", 1e-4);
        assert!(!a.steps[0].correct, "{:?}", a.steps);
    }

    #[test]
    fn forms_models_write_arithmetic_in() {
        let ok = |text: &str| {
            let a = analyze(text, 1e-4);
            assert!(!a.steps.is_empty(), "{text}: no step");
            assert!(a.steps.iter().all(|s| s.correct), "{text}: {:?}", a.steps);
            a
        };
        // Markdown-escaped multiplication.
        let a =
            ok("so that's 220 \\* 40/100 = <<220*40/100=88>>88 ruined castles, 220 \\* 2 = 440.");
        assert_eq!(a.steps.last().map(|s| s.shown), Some(440.0));
        assert_eq!(a.steps.last().map(|s| s.at), Some(73));
        // A fraction as the result.
        let a = ok("each color makes up 1/3 * 1/2 = 1/6 of the total mural.");
        assert!(
            (a.steps[0].shown - 1.0 / 6.0).abs() < 1e-12,
            "{:?}",
            a.steps
        );
        // An equation with an unknown is not checked as arithmetic.
        let a = analyze("x * 4 + 8 = 40, so 4x = 32 and x = 32 / 4 = 8", 1e-4);
        assert!(a.steps.iter().all(|s| s.correct), "{:?}", a.steps);
        assert_eq!(a.steps.len(), 1, "{:?}", a.steps);
        // Still caught: a wrong fraction, a wrong escaped product.
        assert!(!analyze("1/3 * 1/2 = 1/5", 1e-4).steps[0].correct);
        assert!(!analyze("220 \\* 2 = 400", 1e-4).steps[0].correct);
    }

    #[test]
    fn truncation() {
        assert!(analyze("which is 15 + 25 = <<15+2", 1e-4).truncated);
        assert!(analyze("so the total is 15 +", 1e-4).truncated);
        assert!(!analyze("#### 40", 1e-4).truncated);
    }

    #[test]
    fn quantities_the_answer_never_uses() {
        let q = "Janet has 16 eggs, eats 3 and sells the rest at $2 with a 25% discount.";
        assert_eq!(
            unused_quantities(q, "16 - 3 = 13; 13 * 2 = 26; 26 * 0.75 = 19.5, so 0.25 off"),
            Vec::<String>::new()
        );
        assert_eq!(
            unused_quantities(q, "16 - 3 = 13, 13 * 2 = 26\n#### 26"),
            vec!["25".to_string()]
        );
        assert_eq!(
            unused_quantities("Two trains: 1,200 km and 1,200 km.", "#### 7"),
            vec!["1,200".to_string()]
        );
    }

    #[test]
    fn what_counts_as_a_question_quantity() {
        let q = "From 5 PM to 9 PM, 2 hours free; 1/4 of 40 guests left at 10:30. Each paid $15.";
        // Times of day, and a fraction read through its denominator.
        assert_eq!(
            unused_quantities(q, "40 * 3/4 = 30 guests; 4 - 2 = 2 hours * $15 = $30"),
            Vec::<String>::new()
        );
        // ... or through its value.
        assert_eq!(
            unused_quantities(q, "40 * 0.25 = 10 left; 2 * $15 = $30"),
            Vec::<String>::new()
        );
        assert_eq!(
            unused_quantities(q, "40 - 10 = 30; 2 * 15 = 30"),
            vec!["1/4".to_string()]
        );
        assert_eq!(
            unused_quantities(q, "1/4 of them"),
            vec!["2".to_string(), "40".to_string(), "15".to_string()]
        );
        // "am" only as a word of its own.
        assert_eq!(
            unused_quantities("I am 5 among 7", "#### 5"),
            vec!["7".to_string()]
        );
        assert_eq!(
            unused_quantities("5 amps and 7", "#### 7"),
            vec!["5".to_string()]
        );
    }

    #[test]
    fn answer_phrase_wins_over_last_number() {
        let a = analyze("The answer is 12.\nThat took 3 steps", 1e-4);
        assert_eq!(a.final_answer, Some(12.0));
    }
}
