//! Hostile guest: returns an 8 MiB reason
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("huge-output", "0.1.0", "returns an 8 MiB reason")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        Ok(Verdict::accept(
            1.0,
            "x".repeat(8 << 20 | candidate.text.len()),
        ))
    }
}

arbiter_sdk::export_verifier!(Guest);
