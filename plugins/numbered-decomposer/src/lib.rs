//! Splits a multi-part request ("1. ... 2. ...", "Q1: ...", "(a) ...") into one sub-task
//! per question, each carrying the shared context that precedes the questions, and joins
//! the answers back in order. Requests with fewer than `min-parts` questions are not
//! decomposed (empty plan).

use arbiter_sdk::prelude::*;

struct NumberedDecomposer {
    min_parts: usize,
    max_parts: usize,
    include_context: bool,
    sequential: bool,
}

/// Recognises a question marker at the start of a line and returns its label and the
/// text after it: `1.` `2)` `Q3:` `(a)` `b)`.
pub fn marker(line: &str) -> Option<(String, &str)> {
    let l = line.trim_start();
    let (l, q) = match l.strip_prefix(['Q', 'q']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => (rest, true),
        _ => (l, false),
    };
    let (label, rest) = if let Some(inner) = l.strip_prefix('(') {
        let end = inner.find(')')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        let end = l.find(|c: char| !c.is_ascii_alphanumeric())?;
        let (label, rest) = l.split_at(end);
        let rest = rest.strip_prefix(['.', ')', ':'])?;
        (label, rest)
    };
    let numeric =
        !label.is_empty() && label.len() <= 3 && label.chars().all(|c| c.is_ascii_digit());
    let letter = !q && label.len() == 1 && label.chars().all(|c| c.is_ascii_lowercase());
    if !(numeric || letter) || !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((label.to_string(), rest.trim()))
}

/// Splits `text` into (context, [(label, question)]).
pub fn split(text: &str) -> (String, Vec<(String, String)>) {
    let mut context = Vec::new();
    let mut parts: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        match marker(line) {
            Some((label, rest)) => parts.push((label, rest.to_string())),
            None => match parts.last_mut() {
                Some((_, q)) if !line.trim().is_empty() => {
                    q.push('\n');
                    q.push_str(line.trim());
                }
                Some(_) => {}
                None => context.push(line),
            },
        }
    }
    (context.join("\n").trim().to_string(), parts)
}

impl Decomposer for NumberedDecomposer {
    fn info() -> PluginInfo {
        PluginInfo::decomposer(
            "numbered-decomposer",
            env!("CARGO_PKG_VERSION"),
            "One sub-task per numbered question; answers joined in order",
        )
        .stateless()
        .config_key(
            "min-parts",
            "Decompose only with at least this many questions",
            Some("2"),
        )
        .config_key(
            "max-parts",
            "Refuse requests with more questions than this",
            Some("20"),
        )
        .config_key(
            "include-context",
            "Prefix each sub-task with the text before the questions",
            Some("true"),
        )
        .config_key(
            "sequential",
            "Each question depends on the previous one and sees its answer (a chain, not independent sub-tasks)",
            Some("false"),
        )
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        config.deny_unknown(&["min-parts", "max-parts", "include-context", "sequential"])?;
        let d = NumberedDecomposer {
            min_parts: config.parse_or("min-parts", 2)?,
            max_parts: config.parse_or("max-parts", 20)?,
            include_context: config.parse_or("include-context", true)?,
            sequential: config.parse_or("sequential", false)?,
        };
        if d.min_parts < 2 || d.max_parts < d.min_parts {
            return Err(PluginError::InvalidConfig(
                "need 2 <= min-parts <= max-parts".into(),
            ));
        }
        Ok(d)
    }

    fn decompose(&self, task: &Task) -> Result<Plan, PluginError> {
        let (context, parts) = split(task.prompt());
        if parts.len() < self.min_parts {
            return Ok(Plan {
                subtasks: vec![],
                reason: format!("{} question(s): answer directly", parts.len()),
            });
        }
        if parts.len() > self.max_parts {
            return Err(PluginError::InvalidInput(format!(
                "{} questions is more than max-parts = {}",
                parts.len(),
                self.max_parts
            )));
        }
        let subtasks = parts
            .iter()
            .enumerate()
            .map(|(i, (label, question))| {
                let mut prompt = if self.include_context && !context.is_empty() {
                    format!("{context}\n\nQuestion {label}: {question}")
                } else {
                    question.clone()
                };
                let mut depends_on = vec![];
                if self.sequential && i > 0 {
                    // The host replaces `{{q<i>}}` with that sub-task's answer.
                    prompt = format!("Previous answer: {{{{q{i}}}}}\n\n{prompt}");
                    depends_on.push(format!("q{i}"));
                }
                Subtask {
                    id: format!("q{}", i + 1),
                    prompt,
                    depends_on,
                    route: None,
                    verify: None,
                }
            })
            .collect();
        Ok(Plan {
            subtasks,
            reason: format!(
                "{} {} questions",
                parts.len(),
                if self.sequential {
                    "chained"
                } else {
                    "independent"
                }
            ),
        })
    }

    fn compose(&self, task: &Task, results: &[Subresult]) -> Result<String, PluginError> {
        let (_, parts) = split(task.prompt());
        let mut out = Vec::new();
        for (i, (label, _)) in parts.iter().enumerate() {
            let id = format!("q{}", i + 1);
            let answer = results.iter().find(|r| r.id == id).ok_or_else(|| {
                PluginError::InvalidInput(format!("no answer for sub-task `{id}`"))
            })?;
            out.push(format!("{label}. {}", answer.answer.trim()));
        }
        Ok(out.join("\n\n"))
    }
}

arbiter_sdk::export_decomposer!(NumberedDecomposer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(marker("1. What?"), Some(("1".into(), "What?")));
        assert_eq!(marker("  2) Why"), Some(("2".into(), "Why")));
        assert_eq!(marker("Q3: How"), Some(("3".into(), "How")));
        assert_eq!(marker("(a) first"), Some(("a".into(), "first")));
        assert_eq!(marker("3.5 is a number"), None);
        assert_eq!(marker("Dr. Smith"), None);
        assert_eq!(marker("2024. was a year"), None);
    }

    #[test]
    fn sequential_plans_chain_the_answers() {
        let d = NumberedDecomposer {
            min_parts: 2,
            max_parts: 20,
            include_context: true,
            sequential: true,
        };
        let task = Task {
            id: "t".into(),
            messages: vec![Message::user("1. a?\n2. b?")],
            tags: vec![],
            metadata: vec![],
            tools: vec![],
        };
        let plan = d.decompose(&task).unwrap();
        assert!(plan.subtasks[0].depends_on.is_empty());
        assert_eq!(plan.subtasks[1].depends_on, ["q1"]);
        assert!(plan.subtasks[1]
            .prompt
            .starts_with("Previous answer: {{q1}}"));
    }

    #[test]
    fn splits_context_and_questions() {
        let (ctx, parts) = split("A shop sells apples.\n\n1. How many?\n   Think.\n2. How much?");
        assert_eq!(ctx, "A shop sells apples.");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].1, "How many?\nThink.");
    }
}
