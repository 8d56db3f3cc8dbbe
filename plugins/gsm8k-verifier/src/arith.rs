//! A small evaluator for the arithmetic written in math answers: + - * / x × ÷ ^,
//! parentheses, unary minus. Floats throughout (answers mix 82.5 / 3 and 9 * 2).

pub fn close(a: f64, b: f64, tolerance: f64) -> bool {
    let scale = a.abs().max(b.abs()).max(1.0);
    (a - b).abs() <= tolerance * scale
}

/// True when `shown` is `actual` rounded to the precision it is written with
/// (`10 / 3 = 3.33` is right; `10 / 3 = 3.5` is not).
pub fn matches_shown(actual: f64, shown: f64, shown_text: &str, tolerance: f64) -> bool {
    if close(actual, shown, tolerance) {
        return true;
    }
    let decimals = shown_text.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    let unit = 10f64.powi(-decimals);
    // Rounded or truncated to the shown precision, never more than one unit off.
    (actual - shown).abs() < unit && decimals >= 1
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
    Open,
    Close,
}

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() || matches!(c, '$' | '€' | '£') => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == ',')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().filter(|c| **c != ',').collect();
                let text = text.trim_end_matches('.');
                out.push(Tok::Num(text.parse().ok()?));
            }
            '+' | '-' | '*' | '/' | '^' => {
                out.push(Tok::Op(c));
                i += 1;
            }
            'x' | 'X' | '×' | '·' => {
                out.push(Tok::Op('*'));
                i += 1;
            }
            '÷' => {
                out.push(Tok::Op('/'));
                i += 1;
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.term()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Some(v)
    }

    fn term(&mut self) -> Option<f64> {
        let mut v = self.power()?;
        while let Some(Tok::Op(op @ ('*' | '/'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.power()?;
            v = if op == '*' { v * r } else { v / r };
        }
        Some(v)
    }

    fn power(&mut self) -> Option<f64> {
        let base = self.unary()?;
        if let Some(Tok::Op('^')) = self.peek() {
            self.pos += 1;
            let exp = self.power()?;
            return Some(base.powf(exp));
        }
        Some(base)
    }

    fn unary(&mut self) -> Option<f64> {
        match self.peek().cloned()? {
            Tok::Op('-') => {
                self.pos += 1;
                Some(-self.unary()?)
            }
            Tok::Num(n) => {
                self.pos += 1;
                // Implicit multiplication: `2(3 + 4)`.
                if let Some(Tok::Open) = self.peek() {
                    return Some(n * self.unary()?);
                }
                Some(n)
            }
            Tok::Open => {
                self.pos += 1;
                let v = self.expr()?;
                match self.peek() {
                    Some(Tok::Close) => {
                        self.pos += 1;
                        Some(v)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Evaluates an arithmetic expression; `None` if it is not one (or divides by zero).
pub fn eval(src: &str) -> Option<f64> {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return None;
    }
    let mut p = Parser { toks, pos: 0 };
    let v = p.expr()?;
    (p.pos == p.toks.len() && v.is_finite()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates() {
        assert_eq!(eval("48/2"), Some(24.0));
        assert_eq!(eval("20 + 80 + 160"), Some(260.0));
        assert_eq!(eval("9 * $2"), Some(18.0));
        assert_eq!(eval("(12 / 20) x 100"), Some(60.0));
        assert_eq!(eval("80,000 + 50,000"), Some(130000.0));
        assert_eq!(eval("2(3 + 4)"), Some(14.0));
        assert_eq!(eval("-3 + 5"), Some(2.0));
        assert_eq!(eval("2^3^2"), Some(512.0));
        assert_eq!(eval("1/0"), None);
        assert_eq!(eval("3 +"), None);
        assert_eq!(eval("apples"), None);
    }

    #[test]
    fn rounding_to_shown_precision() {
        assert!(matches_shown(10.0 / 3.0, 3.33, "3.33", 1e-4));
        assert!(!matches_shown(10.0 / 3.0, 3.5, "3.5", 1e-4));
        assert!(!matches_shown(55.0 + 5.0, 55.0, "55", 1e-4));
    }
}
