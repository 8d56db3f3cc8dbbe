//! Difficulty router: scores a prompt from cheap features (length, how many numbers it
//! holds, keywords that signal hard tasks) and sends easy prompts to the cheap model
//! first, with escalation to the expensive one; hard prompts go straight to the
//! expensive model. All thresholds are settings.

use arbiter_sdk::prelude::*;

pub struct PromptRouter {
    cheap: Option<String>,
    expensive: Option<String>,
    threshold: f64,
    long_prompt: f64,
    many_numbers: f64,
    keywords: Vec<String>,
    cheap_samples: u32,
    min_score: Option<f64>,
}

/// Difficulty in [0, 1]: a weighted mix of normalised length, number count and keyword hits.
pub fn difficulty(prompt: &str, long_prompt: f64, many_numbers: f64, keywords: &[String]) -> f64 {
    let length = (prompt.chars().count() as f64 / long_prompt).min(1.0);
    let numbers = count_numbers(prompt) as f64 / many_numbers;
    let lower = prompt.to_lowercase();
    let hits = keywords
        .iter()
        .filter(|k| lower.contains(k.as_str()))
        .count() as f64;
    (0.4 * length + 0.3 * numbers.min(1.0) + 0.3 * (hits / 2.0).min(1.0)).min(1.0)
}

fn count_numbers(text: &str) -> usize {
    let mut count = 0;
    let mut in_number = false;
    for c in text.chars() {
        let digit = c.is_ascii_digit();
        if digit && !in_number {
            count += 1;
        }
        in_number = digit || (in_number && (c == '.' || c == ','));
    }
    count
}

impl Router for PromptRouter {
    fn info() -> PluginInfo {
        PluginInfo::router(
            "prompt-router",
            env!("CARGO_PKG_VERSION"),
            "Cheap model first for easy prompts (with escalation), expensive model for hard ones",
        )
        .stateless()
        .config_key(
            "cheap",
            "Cheap model name (default: the cheapest option)",
            None,
        )
        .config_key(
            "expensive",
            "Expensive model name (default: the priciest option)",
            None,
        )
        .config_key(
            "threshold",
            "Difficulty in [0,1] at or above which the cheap model is skipped",
            Some("0.6"),
        )
        .config_key(
            "long-prompt",
            "Prompt length (characters) that counts as long",
            Some("1200"),
        )
        .config_key(
            "many-numbers",
            "Number count that counts as many",
            Some("8"),
        )
        .config_key(
            "keywords",
            "Comma-separated words that signal a hard task",
            Some("prove,derive,optimal,probability,integral"),
        )
        .config_key(
            "cheap-samples",
            "Candidates to sample from the cheap model",
            Some("1"),
        )
        .config_key(
            "min-score",
            "Escalate unless the cheap answer's verified score reaches this",
            None,
        )
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        config.deny_unknown(&[
            "cheap",
            "expensive",
            "threshold",
            "long-prompt",
            "many-numbers",
            "keywords",
            "cheap-samples",
            "min-score",
        ])?;
        let keywords = if config.get("keywords").is_some() {
            config
                .list("keywords")
                .into_iter()
                .map(|k| k.to_lowercase())
                .collect()
        } else {
            ["prove", "derive", "optimal", "probability", "integral"]
                .map(String::from)
                .to_vec()
        };
        let router = PromptRouter {
            cheap: config.get("cheap").map(String::from),
            expensive: config.get("expensive").map(String::from),
            threshold: config.parse_or("threshold", 0.6)?,
            long_prompt: config.parse_or("long-prompt", 1200.0)?,
            many_numbers: config.parse_or("many-numbers", 8.0)?,
            keywords,
            cheap_samples: config.parse_or("cheap-samples", 1)?,
            min_score: config
                .get("min-score")
                .map(|_| config.parse_or("min-score", 0.0))
                .transpose()?,
        };
        if router.long_prompt <= 0.0 || router.many_numbers <= 0.0 || router.cheap_samples == 0 {
            return Err(PluginError::InvalidConfig(
                "long-prompt, many-numbers and cheap-samples must be positive".into(),
            ));
        }
        Ok(router)
    }

    fn route(&self, task: &Task, options: &[ModelOption]) -> Result<RouteDecision, PluginError> {
        let price = |o: &ModelOption| o.input_price + o.output_price;
        let pick = |name: &Option<String>, cheapest: bool| -> Result<String, PluginError> {
            match name {
                Some(n) if options.iter().any(|o| &o.name == n) => Ok(n.clone()),
                Some(n) => Err(PluginError::InvalidInput(format!(
                    "model `{n}` is not among the options"
                ))),
                None => {
                    let by_price =
                        |a: &&ModelOption, b: &&ModelOption| price(a).total_cmp(&price(b));
                    let o = if cheapest {
                        options.iter().min_by(by_price)
                    } else {
                        options.iter().max_by(by_price)
                    };
                    o.map(|o| o.name.clone()).ok_or_else(|| {
                        PluginError::InvalidInput("no models to route between".into())
                    })
                }
            }
        };
        let cheap = pick(&self.cheap, true)?;
        let expensive = pick(&self.expensive, false)?;
        let d = difficulty(
            task.prompt(),
            self.long_prompt,
            self.many_numbers,
            &self.keywords,
        );
        let expensive_step = RouteStep {
            target: expensive.clone(),
            samples: 1,
            min_score: None,
        };
        let steps = if d >= self.threshold || cheap == expensive {
            vec![expensive_step]
        } else {
            vec![
                RouteStep {
                    target: cheap.clone(),
                    samples: self.cheap_samples,
                    min_score: self.min_score,
                },
                expensive_step,
            ]
        };
        Ok(RouteDecision {
            reason: format!(
                "difficulty {d:.2} {} threshold {:.2}: {}",
                if d >= self.threshold { ">=" } else { "<" },
                self.threshold,
                steps
                    .iter()
                    .map(|s| s.target.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
            steps,
        })
    }
}

arbiter_sdk::export_router!(PromptRouter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features() {
        assert_eq!(count_numbers("1, 2.5 and 3,000 then 44"), 4);
        let kw = vec!["prove".to_string()];
        let easy = difficulty("What is 2 + 2?", 1200.0, 8.0, &kw);
        let hard = difficulty(
            &format!("Prove that {}", "1 2 3 4 5 6 7 8 9 ".repeat(80)),
            1200.0,
            8.0,
            &kw,
        );
        assert!(easy < 0.2, "{easy}");
        assert!(hard > 0.6, "{hard}");
    }
}
