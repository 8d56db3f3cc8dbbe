//! The patterns `steps` looks for, matched by hand.
//!
//! Each function matches exactly what the regular expression in its doc comment matches
//! (leftmost-first, ASCII `\d` and `\s`, as regex-lite does); the tests hold them to
//! regex-lite on the shipped GSM8K answers and on random text. They replaced regex-lite,
//! whose backtracking-free NFA simulation took 50–180 µs per answer inside wasm, the
//! largest part of the verifier's cost in the gateway; these scans take a few µs.

/// A byte range of the text it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn of(self, text: &str) -> &str {
        &text[self.start..self.end]
    }
}

/// `<<([^<>=]+)=([^<>]*)>>`
pub struct Annotation {
    pub whole: Span,
    pub lhs: Span,
    pub rhs: Span,
}

/// `(OPERAND(?:\s*[-+*/x×÷^]\s*\(?\s*OPERAND\s*\)?)+)\s*=\s*\$?\s*(-?(?:NUM))(%?)`
/// where `OPERAND` is `\(?\s*-?\$?(?:NUM)%?\s*\)?`.
pub struct InlineStep {
    pub lhs: Span,
    pub rhs: Span,
    pub percent: Span,
}

/// regex-lite's `\s`: ASCII whitespace including vertical tab.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while is_space(at(s, i)) {
        i += 1;
    }
    i
}

/// A number matched by `NUM` = `\d[\d,]*(?:\.\d+)?|\.\d+`.
struct Num {
    end: usize,
    /// End of the `\d[\d,]*` part: a match starting at any digit before it ends at the
    /// same place. Equal to the start for the `\.\d+` form.
    whole_end: usize,
}

fn num(s: &[u8], i: usize) -> Option<Num> {
    let digits = |mut j: usize| {
        while at(s, j).is_ascii_digit() {
            j += 1;
        }
        j
    };
    if at(s, i).is_ascii_digit() {
        let mut j = i + 1;
        while at(s, j).is_ascii_digit() || at(s, j) == b',' {
            j += 1;
        }
        let whole_end = j;
        if at(s, j) == b'.' && at(s, j + 1).is_ascii_digit() {
            j = digits(j + 1);
        }
        Some(Num { end: j, whole_end })
    } else if at(s, i) == b'.' && at(s, i + 1).is_ascii_digit() {
        Some(Num {
            end: digits(i + 1),
            whole_end: i,
        })
    } else {
        None
    }
}

/// `-?(?:NUM)`: the end of the match.
fn signed_num(s: &[u8], i: usize) -> Option<usize> {
    if at(s, i) == b'-' {
        if let Some(n) = num(s, i + 1) {
            return Some(n.end);
        }
    }
    num(s, i).map(|n| n.end)
}

/// `\s*[-+*/x×÷^]\s*`: the end of the match.
fn operator(s: &[u8], i: usize) -> Option<usize> {
    let i = skip_space(s, i);
    let len = match (at(s, i), at(s, i + 1)) {
        (b'-' | b'+' | b'*' | b'/' | b'x' | b'^', _) => 1,
        // × and ÷ in UTF-8.
        (0xc3, 0x97 | 0xb7) => 2,
        _ => return None,
    };
    Some(skip_space(s, i + len))
}

/// `OPERAND`: the end of the match, or where the number was missing (a search can
/// resume there: starting anywhere before it misses the same number).
fn operand(s: &[u8], i: usize) -> Result<usize, usize> {
    let mut j = i;
    if at(s, j) == b'(' {
        j += 1;
    }
    j = skip_space(s, j);
    let before_sign = j;
    if at(s, j) == b'-' {
        j += 1;
    }
    if at(s, j) == b'$' {
        j += 1;
    }
    let Some(n) = num(s, j) else {
        return Err(before_sign);
    };
    j = n.end;
    if at(s, j) == b'%' {
        j += 1;
    }
    j = skip_space(s, j);
    if at(s, j) == b')' {
        j += 1;
    }
    Ok(j)
}

/// Where the first operand's number starts when the operand matched at `start`.
fn number_start(s: &[u8], start: usize) -> usize {
    let mut j = start;
    if at(s, j) == b'(' {
        j += 1;
    }
    j = skip_space(s, j);
    if at(s, j) == b'-' {
        j += 1;
    }
    if at(s, j) == b'$' {
        j += 1;
    }
    j
}

/// The inline step starting exactly at `start`, or where the next attempt should start.
fn inline_step_from(s: &[u8], start: usize) -> Result<InlineStep, usize> {
    let first_end = operand(s, start).map_err(|k| k.max(start + 1))?;
    // Past the first operand, matching depends only on where its number ends, and a
    // start anywhere before the number or inside its `\d[\d,]*` digits finds the same
    // end: after a miss, resume past them.
    let skip = || {
        let n_start = number_start(s, start);
        let n = num(s, n_start).expect("the operand matched a number here");
        let next = if n.whole_end > n_start {
            n.whole_end
        } else {
            n_start + 1
        };
        next.max(start + 1)
    };
    let mut end = first_end;
    let mut repeats = 0;
    while let Some(mut j) = operator(s, end) {
        if at(s, j) == b'(' {
            j += 1;
        }
        j = skip_space(s, j);
        let Ok(mut j) = operand(s, j) else { break };
        j = skip_space(s, j);
        if at(s, j) == b')' {
            j += 1;
        }
        end = j;
        repeats += 1;
    }
    if repeats == 0 {
        return Err(skip());
    }
    let mut j = skip_space(s, end);
    if at(s, j) != b'=' {
        return Err(skip());
    }
    j = skip_space(s, j + 1);
    if at(s, j) == b'$' {
        j += 1;
    }
    j = skip_space(s, j);
    let Some(rhs_end) = signed_num(s, j) else {
        return Err(skip());
    };
    let pct_end = if at(s, rhs_end) == b'%' {
        rhs_end + 1
    } else {
        rhs_end
    };
    Ok(InlineStep {
        lhs: Span { start, end },
        rhs: Span {
            start: j,
            end: rhs_end,
        },
        percent: Span {
            start: rhs_end,
            end: pct_end,
        },
    })
}

/// Where the expression continuing a step's result ends, when the step is one link of a
/// chain of equalities (`4 * 125 - 2 = 500 - 2 = 498`: from after `500`, the end of
/// `500 - 2`). `None` unless operators and operands follow and then an `=`.
pub fn chained_rhs_end(text: &str, from: usize) -> Option<usize> {
    let s = text.as_bytes();
    let mut end = from;
    while let Some(j) = operator(s, end) {
        match operand(s, j) {
            Ok(k) => end = k,
            Err(_) => break,
        }
    }
    let end = if end > from {
        // `operand` swallows trailing white space; the expression ends before it.
        from + text[from..end].trim_end().len()
    } else {
        return None;
    };
    (at(s, skip_space(s, end)) == b'=').then_some(end)
}

/// The leftmost inline step that starts at or after `from`.
pub fn inline_step(text: &str, from: usize) -> Option<InlineStep> {
    let s = text.as_bytes();
    let mut start = from;
    while start < s.len() {
        match inline_step_from(s, start) {
            Ok(step) => return Some(step),
            Err(next) => start = next,
        }
    }
    None
}

/// Every non-overlapping annotation, left to right.
pub fn annotations(text: &str) -> Vec<Annotation> {
    let s = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(off) = text[i..].find("<<") {
        let start = i + off;
        let lhs_start = start + 2;
        let mut j = lhs_start;
        while j < s.len() && !matches!(s[j], b'<' | b'>' | b'=') {
            j += 1;
        }
        if j > lhs_start && at(s, j) == b'=' {
            let rhs_start = j + 1;
            let mut k = rhs_start;
            while k < s.len() && !matches!(s[k], b'<' | b'>') {
                k += 1;
            }
            if at(s, k) == b'>' && at(s, k + 1) == b'>' {
                found.push(Annotation {
                    whole: Span { start, end: k + 2 },
                    lhs: Span {
                        start: lhs_start,
                        end: j,
                    },
                    rhs: Span {
                        start: rhs_start,
                        end: k,
                    },
                });
                i = k + 2;
                continue;
            }
        }
        i = start + 1;
    }
    found
}

/// The number of the last `####\s*\$?\s*(-?(?:NUM))`.
pub fn final_marker(text: &str) -> Option<Span> {
    let s = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while let Some(off) = text[i..].find("####") {
        let start = i + off;
        let mut j = skip_space(s, start + 4);
        if at(s, j) == b'$' {
            j += 1;
        }
        j = skip_space(s, j);
        match signed_num(s, j) {
            Some(end) => {
                last = Some(Span { start: j, end });
                i = end;
            }
            None => i = start + 1,
        }
    }
    last
}

/// The number of the last `(?i)answer(?:\s+is)?\s*[:=]?\s*\$?\s*(-?(?:NUM))`.
pub fn answer_phrase(text: &str) -> Option<Span> {
    let s = text.as_bytes();
    let rest = |mut j: usize| {
        j = skip_space(s, j);
        if matches!(at(s, j), b':' | b'=') {
            j += 1;
        }
        j = skip_space(s, j);
        if at(s, j) == b'$' {
            j += 1;
        }
        j = skip_space(s, j);
        signed_num(s, j).map(|end| Span { start: j, end })
    };
    let mut last = None;
    let mut i = 0;
    while i + 6 <= s.len() {
        if !s[i..i + 6].eq_ignore_ascii_case(b"answer") {
            i += 1;
            continue;
        }
        let after = i + 6;
        let with_is = if is_space(at(s, after)) {
            let j = skip_space(s, after);
            s.get(j..j + 2)
                .filter(|w| w.eq_ignore_ascii_case(b"is"))
                .and_then(|_| rest(j + 2))
        } else {
            None
        };
        match with_is.or_else(|| rest(after)) {
            Some(span) => {
                last = Some(span);
                i = span.end;
            }
            None => i += 1,
        }
    }
    last
}

/// Every non-overlapping `-?(?:NUM)` in `text`, left to right.
pub fn numbers(text: &str) -> impl Iterator<Item = Span> + '_ {
    let s = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < s.len() {
            if let Some(end) = signed_num(s, i) {
                let span = Span { start: i, end };
                i = end;
                return Some(span);
            }
            i += 1;
        }
        None
    })
}

/// The last of [`numbers`].
pub fn last_number(text: &str) -> Option<Span> {
    numbers(text).last()
}

/// The scans against the regular expressions they replaced.
#[cfg(test)]
mod tests {
    use super::*;
    use regex_lite::Regex;

    const NUM: &str = r"\d[\d,]*(?:\.\d+)?|\.\d+";

    struct Reference {
        annotation: Regex,
        inline_step: Regex,
        final_marker: Regex,
        answer_phrase: Regex,
        any_number: Regex,
    }

    impl Reference {
        fn new() -> Reference {
            let operand = format!(r"\(?\s*-?\$?(?:{NUM})%?\s*\)?");
            let op = r"\s*[-+*/x×÷^]\s*";
            Reference {
                annotation: Regex::new(r"<<([^<>=]+)=([^<>]*)>>").unwrap(),
                inline_step: Regex::new(&format!(
                    r"({operand}(?:{op}\(?\s*{operand}\s*\)?)+)\s*=\s*\$?\s*(-?(?:{NUM}))(%?)"
                ))
                .unwrap(),
                final_marker: Regex::new(&format!(r"####\s*\$?\s*(-?(?:{NUM}))")).unwrap(),
                answer_phrase: Regex::new(&format!(
                    r"(?i)answer(?:\s+is)?\s*[:=]?\s*\$?\s*(-?(?:{NUM}))"
                ))
                .unwrap(),
                any_number: Regex::new(&format!(r"-?(?:{NUM})")).unwrap(),
            }
        }

        /// Compares every scan on `text`; with `every_start`, inline steps from every
        /// position, otherwise from the positions `steps::analyze` resumes at.
        fn check(&self, text: &str, every_start: bool) {
            let span = |m: Option<regex_lite::Match>| m.map(|m| (m.start(), m.end()));
            let ours = |s: Span| Some((s.start, s.end));

            let want: Vec<_> = self
                .annotation
                .captures_iter(text)
                .map(|c| (span(c.get(0)), span(c.get(1)), span(c.get(2))))
                .collect();
            let got: Vec<_> = annotations(text)
                .iter()
                .map(|a| (ours(a.whole), ours(a.lhs), ours(a.rhs)))
                .collect();
            assert_eq!(got, want, "annotations in {text:?}");

            let step = |at: usize| {
                let want = self
                    .inline_step
                    .captures_at(text, at)
                    .map(|c| (span(c.get(1)), span(c.get(2)), span(c.get(3))));
                let got =
                    inline_step(text, at).map(|m| (ours(m.lhs), ours(m.rhs), ours(m.percent)));
                assert_eq!(got, want, "inline step from {at} in {text:?}");
                got
            };
            if every_start {
                (0..=text.len())
                    .filter(|i| text.is_char_boundary(*i))
                    .for_each(|i| {
                        step(i);
                    });
            } else {
                let mut at = 0;
                while let Some((_, Some((rhs, _)), _)) = step(at) {
                    at = rhs;
                }
            }

            let last = |re: &Regex| re.captures_iter(text).last().and_then(|c| span(c.get(1)));
            assert_eq!(
                final_marker(text).and_then(ours),
                last(&self.final_marker),
                "final marker in {text:?}"
            );
            assert_eq!(
                answer_phrase(text).and_then(ours),
                last(&self.answer_phrase),
                "answer phrase in {text:?}"
            );
            assert_eq!(
                last_number(text).and_then(ours),
                span(self.any_number.find_iter(text).last()),
                "last number in {text:?}"
            );
        }
    }

    #[test]
    fn same_as_the_regexes_on_gsm8k_answers() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/gsm8k-dev.jsonl");
        let data = std::fs::read_to_string(path).expect("the repo's GSM8K dev answers");
        let reference = Reference::new();
        let mut texts = 0;
        for line in data.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            for c in record["candidates"].as_array().unwrap() {
                let text = c["text"].as_str().unwrap();
                reference.check(text, false);
                // Annotations are blanked out before inline steps are searched.
                let blanked = reference.annotation.replace_all(text, " ");
                reference.check(&blanked, false);
                texts += 1;
            }
        }
        assert!(texts > 1000, "only {texts} answers");
    }

    #[test]
    fn same_as_the_regexes_on_random_text() {
        // Every character the patterns care about, plus look-alikes they must not.
        const PIECES: &[&str] = &[
            "0",
            "1",
            "7",
            "12",
            "3,5",
            ",",
            ".",
            ".5",
            " ",
            "  ",
            "\t",
            "\n",
            "\x0b",
            "\u{a0}",
            "(",
            ")",
            "-",
            "+",
            "*",
            "/",
            "x",
            "X",
            "×",
            "÷",
            "^",
            "=",
            "$",
            "%",
            "<",
            "<<",
            ">",
            ">>",
            "#",
            "####",
            "answer",
            "ANSWER",
            "Answer is",
            " is",
            "IS",
            ":",
            "ſ",
            "K",
            "a",
            "é",
            "\u{212a}",
        ];
        // Mostly arithmetic, where the interplay of numbers and operators is subtle.
        const DENSE: &[&str] = &[
            "1", "5", ",", ".", " ", "(", ")", "-", "+", "x", "X", "*", "/", "^", "×", "÷", "=",
            "$", "%",
        ];
        // Numbers whose digits hold other numbers (`1.5,5` holds `5,5`), in calculations.
        const NUMBERS: &[&str] = &[
            "1.5,5", "5,5", ".5", "1.2.3", "12", "0.", " + ", "-", " = ", "=", "(", ")", " ", "$",
            "%", "x ",
        ];
        let reference = Reference::new();
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for pieces in [PIECES, DENSE, NUMBERS] {
            for _ in 0..20_000 {
                let len = rng.usize(1..24);
                let text: String = (0..len)
                    .map(|_| pieces[rng.usize(..pieces.len())])
                    .collect();
                reference.check(&text, true);
            }
        }
    }

    #[test]
    fn long_digit_runs_stay_linear() {
        // A start inside a number that already failed is not tried again.
        let text = "1".repeat(200_000) + " apples";
        assert!(inline_step(&text, 0).is_none());
        assert_eq!(last_number(&text).map(|s| s.end), Some(200_000));
    }
}
