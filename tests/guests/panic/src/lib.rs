//! Hostile guest: panics
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("panic", "0.1.0", "panics")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        // `calm` is the one answer it judges normally (a non-stateless plugin that works).
        if candidate.text == "calm" {
            return Ok(Verdict::accept(1.0, "calm"));
        }
        panic!("boom: the verifier panicked on {:?}", candidate.text)
    }
}

arbiter_sdk::export_verifier!(Guest);
