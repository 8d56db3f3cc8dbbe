//! The smallest useful verifier: accepts non-empty answers. Used by benchmarks.
use arbiter_sdk::prelude::*;

struct Trivial;

impl Verifier for Trivial {
    fn info() -> PluginInfo {
        PluginInfo::verifier("trivial", "0.1.0", "Accepts non-empty answers").stateless()
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Trivial)
    }
    fn verify(&self, _: &Task, c: &Candidate) -> Result<Verdict, PluginError> {
        Ok(if c.text.trim().is_empty() {
            Verdict::reject(0.0, "empty")
        } else {
            Verdict::accept(1.0, "non-empty")
        })
    }
}

arbiter_sdk::export_verifier!(Trivial);
