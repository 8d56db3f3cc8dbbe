//! Counts its calls in instance memory and reports the count: 1 on every call proves a
//! fresh instance per call; a rising count shows warm reuse. (It wrongly claims to be
//! stateless, to make warm reuse observable.) The answer `trap` makes it trap.
use std::sync::atomic::{AtomicU32, Ordering};

use arbiter_sdk::prelude::*;

static CALLS: AtomicU32 = AtomicU32::new(0);

struct Counter;

impl Verifier for Counter {
    fn info() -> PluginInfo {
        PluginInfo::verifier("stateful", "0.1.0", "Counts calls").stateless()
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Counter)
    }
    fn verify(&self, _: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        if candidate.text == "trap" {
            panic!("asked to trap");
        }
        let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Verdict::accept(1.0, n.to_string()))
    }
}

arbiter_sdk::export_verifier!(Counter);
