//! Any bytes as an uploaded component: parsing, validation, world and capability checks,
//! compilation, and one call if it loads as a verifier. Seeded with real components.
#![no_main]
use std::sync::LazyLock;

use arbiter::fuzzing::Sandbox;

static SANDBOX: LazyLock<Sandbox> = LazyLock::new(Sandbox::new);

libfuzzer_sys::fuzz_target!(|data: &[u8]| SANDBOX.component(data));
