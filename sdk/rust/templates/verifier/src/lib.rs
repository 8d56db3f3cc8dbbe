//! {{name}}: an Arbiter verifier.
//!
//! It starts with the example check every `arbiter plugin new` template implements, so
//! its verdicts can be compared across languages: reject an answer that has fewer than
//! `min-length` characters once trimmed, accept anything longer with score 1.
//! Replace `verify` with your own check and `cases.jsonl` with your own cases.

use arbiter_sdk::prelude::*;

struct NonEmpty {
    min_length: usize,
}

impl Verifier for NonEmpty {
    fn info() -> PluginInfo {
        PluginInfo::verifier(
            "{{name}}",
            env!("CARGO_PKG_VERSION"),
            "Rejects answers shorter than `min-length` characters",
        )
        .stateless()
        .config_key(
            "min-length",
            "Fewest characters an answer must have once trimmed",
            Some("1"),
        )
    }

    /// Parses the settings once; the SDK keeps the result while they stay the same.
    fn new(config: &Config) -> Result<Self, PluginError> {
        Ok(NonEmpty {
            min_length: config.parse_or("min-length", 1)?,
        })
    }

    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let length = candidate.text.trim().chars().count();
        Ok(if length < self.min_length {
            Verdict::reject(
                0.0,
                format!(
                    "the answer has {length} characters; at least {} are required",
                    self.min_length
                ),
            )
        } else {
            Verdict::accept(1.0, format!("the answer has {length} characters"))
        })
    }
}

arbiter_sdk::export_verifier!(NonEmpty);
