//! Hostile guest: spends host memory through WASI itself rather than its own heap. With
//! the candidate `random` it asks the host for 16 MiB of random bytes per call, over and
//! over; with `handles` it opens stream handles and never drops them, to fill the host's
//! resource table.
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier("wasi-flood", "0.1.0", "floods the host through WASI")
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        match candidate.text.as_str() {
            "random" => {
                for _ in 0..1_000 {
                    let bytes = wasip2::random::random::get_random_bytes(16 << 20);
                    std::hint::black_box(bytes);
                }
            }
            "handles" => {
                for _ in 0..10_000_000 {
                    std::mem::forget(wasip2::cli::stdout::get_stdout());
                }
            }
            other => return Err(PluginError::Failed(format!("unknown mode {other}"))),
        }
        Ok(Verdict::accept(1.0, "the host gave everything it was asked for"))
    }
}

arbiter_sdk::export_verifier!(Guest);
