//! What a call costs: USD per million input and output tokens.

use serde::{Deserialize, Serialize};

use super::Usage;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// USD per million input (prompt) tokens.
    pub input: f64,
    /// USD per million output (completion) tokens.
    pub output: f64,
}

impl Price {
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.input_tokens as f64 * self.input + usage.output_tokens as f64 * self.output) / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        let p = Price {
            input: 10.0,
            output: 30.0,
        };
        let c = p.cost(Usage {
            input_tokens: 1000,
            output_tokens: 500,
        });
        assert!((c - 0.025).abs() < 1e-12);
        assert_eq!(
            Price::default().cost(Usage {
                input_tokens: 9,
                output_tokens: 9
            }),
            0.0
        );
    }
}
