//! A verifier built against the frozen contract 0.1.0 straight from its WIT, without the
//! SDK (which follows the newest contract): what a plugin built before 0.2.0 looks like.
//! The host must keep loading and calling it next to 0.2.0 plugins.
//!
//! Accepts every candidate and says what it saw (messages, bytes of text), which shows the
//! host converted the task and the candidate into 0.1.0's records.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "verifier",
});

use arbiter::plugin::types::{
    Candidate, Decision, Judged, PluginError, PluginInfo, PluginKind, Selection, Task, Verdict,
};
use exports::arbiter::plugin::verification::Guest;

struct Old;

impl Guest for Old {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "contract-0-1".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Verifier,
            description: "a verifier built against contract 0.1.0".into(),
            stateless: true,
            config_keys: vec![],
        }
    }

    fn check_config(_config: Vec<(String, String)>) -> Result<(), PluginError> {
        Ok(())
    }

    fn verify(
        _config: Vec<(String, String)>,
        task: Task,
        candidate: Candidate,
    ) -> Result<Verdict, PluginError> {
        Ok(Verdict {
            score: 1.0,
            decision: Decision::Accept,
            reason: format!(
                "0.1.0 saw {} message(s) and {} bytes of text",
                task.messages.len(),
                candidate.text.len()
            ),
            checks: vec![],
            details: None,
        })
    }

    fn select(
        _config: Vec<(String, String)>,
        _task: Task,
        candidates: Vec<Judged>,
    ) -> Result<Selection, PluginError> {
        Ok(Selection {
            scores: candidates
                .iter()
                .map(|j| j.verdict.as_ref().map_or(0.0, |v| v.score))
                .collect(),
            reason: "verdict scores".into(),
        })
    }
}

export!(Old);
