//! Hostile guest: allocates until memory runs out
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("membomb", "0.1.0", "allocates until memory runs out")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![candidate.text.len() as u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

arbiter_sdk::export_verifier!(Guest);
