//! Plugin outputs crossing the boundary: the ABI-level liar returns the input as the
//! memory image of its verdict, so the host lifts arbitrary pointers, lengths,
//! discriminants and bytes.
#![no_main]
use std::sync::LazyLock;

use arbiter::fuzzing::{plugin_output, Sandbox};
use arbiter::runtime::Plugin;

static LIAR: LazyLock<(Sandbox, Plugin)> = LazyLock::new(|| {
    let sandbox = Sandbox::new();
    let liar = sandbox.liar(arbiter_fuzz::liar());
    (sandbox, liar)
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| plugin_output(&LIAR.1, data));
