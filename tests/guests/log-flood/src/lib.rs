//! Hostile guest: logs in a loop
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("log-flood", "0.1.0", "logs in a loop")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let line = "y".repeat(1000 + candidate.text.len());
        loop {
            log::info(&line, &[]);
        }
    }
}

arbiter_sdk::export_verifier!(Guest);
