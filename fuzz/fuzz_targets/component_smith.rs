//! Valid core modules from wasm-smith with the exports of a verifier (random bodies),
//! wrapped as components of the `verifier` world: loaded and called, so compilation,
//! instantiation, limits and lifting meet code no compiler would emit.
#![no_main]
use std::sync::LazyLock;

use arbiter::fuzzing::Sandbox;

static SANDBOX: LazyLock<Sandbox> = LazyLock::new(Sandbox::new);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = arbitrary::Unstructured::new(data);
    if let Some(component) = arbiter_fuzz::smith_verifier(&mut u) {
        SANDBOX.component(&component);
    }
});
