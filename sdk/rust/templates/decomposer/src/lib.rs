//! {{name}}: an Arbiter decomposer.
//!
//! It starts with the example split every `arbiter plugin new` template implements, so
//! its plans can be compared across languages: each line starting with "- " becomes a
//! sub-task (`s1`, `s2`, ...), unless there are fewer than two; the answers are joined
//! with newlines. Replace `decompose`/`compose` and `cases.jsonl` with your own.

use arbiter_sdk::prelude::*;

struct Bullets;

/// The text of each line that starts with "- ", trimmed.
fn bullets(prompt: &str) -> Vec<&str> {
    prompt
        .lines()
        .filter_map(|line| line.strip_prefix("- "))
        .map(str::trim)
        .collect()
}

impl Decomposer for Bullets {
    fn info() -> PluginInfo {
        PluginInfo::decomposer(
            "{{name}}",
            env!("CARGO_PKG_VERSION"),
            "One sub-task per bullet point; answers joined in order",
        )
        .stateless()
    }

    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Bullets)
    }

    fn decompose(&self, task: &Task) -> Result<Plan, PluginError> {
        let items = bullets(task.prompt());
        if items.len() < 2 {
            // An empty plan: the host answers the task directly.
            return Ok(Plan {
                subtasks: vec![],
                reason: format!("{} bullet point(s): answer directly", items.len()),
            });
        }
        let subtasks = items
            .iter()
            .enumerate()
            .map(|(i, item)| Subtask {
                id: format!("s{}", i + 1),
                prompt: item.to_string(),
                depends_on: vec![],
                route: None,
                verify: None,
            })
            .collect();
        Ok(Plan {
            subtasks,
            reason: format!("{} bullet points", items.len()),
        })
    }

    fn compose(&self, _task: &Task, results: &[Subresult]) -> Result<String, PluginError> {
        Ok(results
            .iter()
            .map(|r| r.answer.as_str())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

arbiter_sdk::export_decomposer!(Bullets);
