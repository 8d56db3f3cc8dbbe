//! Hostile guest: loops forever
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("spin", "0.1.0", "loops forever")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let mut n: u64 = candidate.text.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

arbiter_sdk::export_verifier!(Guest);
