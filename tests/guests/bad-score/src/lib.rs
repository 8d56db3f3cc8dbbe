//! Hostile guest: returns a score outside [0, 1]
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("bad-score", "0.1.0", "returns a score outside [0, 1]")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let _ = candidate;
        Ok(Verdict {
            score: 1.5,
            decision: Decision::Accept,
            reason: "too sure".into(),
            checks: vec![],
            details: None,
        })
    }
}

arbiter_sdk::export_verifier!(Guest);
