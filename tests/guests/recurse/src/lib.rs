//! Hostile guest: recurses without bound
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("recurse", "0.1.0", "recurses without bound")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        #[allow(unconditional_recursion)] // the point of this guest
        fn dive(n: u64, pad: [u64; 16]) -> u64 {
            std::hint::black_box(pad);
            dive(std::hint::black_box(n + 1), pad) + 1
        }
        let depth = dive(candidate.text.len() as u64, [0; 16]);
        Ok(Verdict::accept(1.0, format!("{depth}")))
    }
}

arbiter_sdk::export_verifier!(Guest);
