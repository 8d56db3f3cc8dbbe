//! Calculations whose operands carry their units or names, which the plain scan does not
//! read: `30 boys + 3 children + 90 girls = 123`, `3 (cats) + 9 (dogs) = 12`,
//! `$40.00 (revenue) - $20.00 (supplies) = $20`.
//!
//! Only the sums that check out are used. Labels are where unit conversions hide
//! (`1 hour + 30 minutes = 90 minutes`), so one that does not is not evidence of a wrong
//! step; one that does tells which result the answer reached last.

/// A labelled calculation: the expression without its labels, its value, and the result
/// as written (its span in the text).
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub expr: String,
    pub actual: f64,
    pub shown: f64,
    pub shown_start: usize,
    pub shown_end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    /// A number's digits (`text[start..end]`, after an optional `$`); `percent` when `%`
    /// follows. Parsed only when a calculation is found: most numbers are not in one.
    Num {
        start: usize,
        end: usize,
        percent: bool,
    },
    Word,
    /// A parenthesised note without digits: `(fire)`.
    Note,
    Op(char),
    Eq,
    /// Punctuation, line breaks, anything else: no calculation spans it.
    Break,
}

/// Most words a label may have (`3 nongendered children`, `48 stink bugs`).
const MAX_LABEL_WORDS: usize = 3;
/// Longest parenthesised note taken as a label.
const MAX_NOTE: usize = 40;

fn tokens(text: &str) -> Vec<Tok> {
    let s = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() / 4);
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'$' | b'0'..=b'9' => {
                let mut j = i + usize::from(c == b'$');
                let digits = j;
                while j < s.len() && (s[j].is_ascii_digit() || (s[j] == b',' && j > digits)) {
                    j += 1;
                }
                if j + 1 < s.len() && s[j] == b'.' && s[j + 1].is_ascii_digit() {
                    j += 1;
                    while j < s.len() && s[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                // A trailing comma is punctuation (`30, 40`), not part of the number.
                while j > digits && s[j - 1] == b',' {
                    j -= 1;
                }
                if j > digits {
                    let percent = s.get(j) == Some(&b'%');
                    out.push(Tok::Num {
                        start: digits,
                        end: j,
                        percent,
                    });
                    i = j + usize::from(percent);
                } else {
                    out.push(Tok::Break);
                    i += 1;
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i;
                while i < s.len() && (s[i].is_ascii_alphabetic() || matches!(s[i], b'\'' | b'-')) {
                    i += 1;
                }
                out.push(if &text[start..i] == "x" {
                    Tok::Op('*')
                } else {
                    Tok::Word
                });
            }
            b'(' => {
                let close = text[i..].find(')').map(|k| i + k);
                match close {
                    Some(k)
                        if k - i <= MAX_NOTE
                            && !text[i..k].bytes().any(|b| b.is_ascii_digit() || b == b'\n') =>
                    {
                        out.push(Tok::Note);
                        i = k + 1;
                    }
                    _ => {
                        out.push(Tok::Break);
                        i += 1;
                    }
                }
            }
            b'+' | b'-' | b'*' | b'/' => {
                out.push(Tok::Op(c as char));
                i += 1;
            }
            b'=' => {
                out.push(Tok::Eq);
                i += 1;
            }
            _ => {
                let ch = text[i..].chars().next().expect("in bounds");
                out.push(match ch {
                    '×' => Tok::Op('*'),
                    '÷' => Tok::Op('/'),
                    _ => Tok::Break,
                });
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// The operand at `i`: where its label ends, and whether it had one.
fn operand(toks: &[Tok], i: usize) -> Option<(usize, bool)> {
    let Some(Tok::Num { percent: false, .. }) = toks.get(i) else {
        return None;
    };
    let mut j = i + 1;
    if toks.get(j) == Some(&Tok::Note) {
        return Some((j + 1, true));
    }
    while j < toks.len() && j - i <= MAX_LABEL_WORDS && toks[j] == Tok::Word {
        j += 1;
    }
    if toks.get(j) == Some(&Tok::Note) {
        j += 1;
    }
    Some((j, j > i + 1))
}

/// The labelled calculations that check out within `tolerance`, left to right.
pub fn labelled_steps(text: &str, tolerance: f64) -> Vec<Labelled> {
    let toks = tokens(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Some((expr, rhs_index)) = labelled_at(text, &toks, i) else {
            i += 1;
            continue;
        };
        let Tok::Num { start, end, .. } = toks[rhs_index] else {
            unreachable!("labelled_at ends on a number");
        };
        let shown = text[start..end].replace(',', "").parse::<f64>().ok();
        if let (Some(actual), Some(shown)) = (crate::arith::eval(&expr), shown) {
            if crate::arith::close(actual, shown, tolerance) {
                found.push(Labelled {
                    expr,
                    actual,
                    shown,
                    shown_start: start,
                    shown_end: end,
                });
            }
        }
        // The result may start the next link: `... = 12 apples + 3 apples = 15`.
        i = rhs_index;
    }
    found
}

/// `operand (op operand)+ = number` at `i` with at least one labelled operand: the
/// expression without its labels and the index of the result.
fn labelled_at(text: &str, toks: &[Tok], i: usize) -> Option<(String, usize)> {
    let (mut j, mut labelled) = operand(toks, i)?;
    let mut terms = 1;
    while let Some(Tok::Op(_)) = toks.get(j) {
        let (next, l) = operand(toks, j + 1)?;
        labelled |= l;
        terms += 1;
        j = next;
    }
    let rhs = j + 1;
    let is_result = matches!(toks.get(rhs), Some(Tok::Num { percent: false, .. }));
    if !(terms > 1 && labelled && toks.get(j) == Some(&Tok::Eq) && is_result) {
        return None;
    }
    let mut expr = String::new();
    for t in &toks[i..j] {
        match *t {
            Tok::Num { start, end, .. } => expr.push_str(&text[start..end]),
            Tok::Op(op) => {
                expr.push(' ');
                expr.push(op);
                expr.push(' ');
            }
            _ => {}
        }
    }
    Some((expr, rhs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> Vec<f64> {
        labelled_steps(text, 1e-4).iter().map(|l| l.shown).collect()
    }

    #[test]
    fn labelled_sums_are_read() {
        let t = "In total, the classroom has 30 boys + 3 nongendered children + 90 girls = 123 children.";
        let l = labelled_steps(t, 1e-4);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(l[0].expr, "30 + 3 + 90");
        assert_eq!(&t[l[0].shown_start..l[0].shown_end], "123");
        assert_eq!(shown("3 (cats) + 9 (dogs) + 7 (rabbits) = 19 pets"), [19.0]);
        assert_eq!(shown("$40.00 (revenue) - $20.00 (supplies) = $20."), [20.0]);
        assert_eq!(shown("he has 9 hours - 8 hours = 1 hour left"), [1.0]);
        assert_eq!(
            shown("12 apples x 3 = 36 apples = 36 apples + 4 apples = 40"),
            [36.0, 40.0]
        );
    }

    #[test]
    fn what_is_not_a_checked_labelled_sum() {
        // Plain arithmetic is the plain scan's.
        assert_eq!(shown("3 + 4 = 7"), Vec::<f64>::new());
        // A sum that does not check out is left alone (a unit conversion, or wrong).
        assert_eq!(shown("1 hour + 30 minutes = 90 minutes"), Vec::<f64>::new());
        // Percentages, units with a slash, sentences between the terms.
        assert_eq!(
            shown("20% of the 50 cars + 10 cars = 20 cars"),
            Vec::<f64>::new()
        );
        assert_eq!(
            shown("9 inpatients * 20 minutes/inpatient = 180 minutes"),
            Vec::<f64>::new()
        );
        assert_eq!(shown("He has 3 cats. Then + 4 dogs = 7"), Vec::<f64>::new());
        assert_eq!(shown("a 5-inch piece + 2 inches = 7"), Vec::<f64>::new());
    }
}
