//! The fuzz targets' smoke run on every `cargo test`: each target's seeds and every input a
//! fuzzing run found (`fuzz/seeds/<target>/`), then a few hundred deterministic mutations
//! of them, through the same entry points as the libFuzzer targets in `fuzz/`
//! (`arbiter::fuzzing`). The libFuzzer builds themselves need a second, instrumented
//! release build of wasmtime, so they run outside CI (docs/fuzzing.md).

use std::path::PathBuf;

use arbiter::fuzzing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{abi_liar, guest, repo_root};

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir: PathBuf = repo_root().join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// The seeds, then `per_seed` mutants of each: the edits libFuzzer starts with (flip,
/// insert, delete, duplicate, splice a "magic" value), several per mutant.
fn with_mutants(seeds: Vec<Vec<u8>>, per_seed: usize) -> Vec<Vec<u8>> {
    const MAGIC: &[&[u8]] = &[
        b"\xff\xff\xff\xff",
        b"\x00\x00\x00\x80",
        b"-1",
        b"1e309",
        b"\"\\ud800\"",
        b"[[[[[[[[",
        b"\n\n",
        b"\r\n",
        b"NaN",
        b"18446744073709551616",
    ];
    let mut rng = StdRng::seed_from_u64(0xA7B1_7E12);
    let mut out = seeds.clone();
    for seed in &seeds {
        for _ in 0..per_seed {
            let mut m = seed.clone();
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(0..=m.len());
                match rng.random_range(0..5) {
                    0 if at < m.len() => m[at] ^= 1 << rng.random_range(0..8),
                    1 => m.insert(at, rng.random()),
                    2 if at < m.len() => {
                        let end = rng.random_range(at..=m.len().min(at + 16));
                        m.drain(at..end);
                    }
                    3 if at < m.len() => {
                        let end = rng.random_range(at..=m.len().min(at + 64));
                        let piece = m[at..end].to_vec();
                        m.splice(at..at, piece);
                    }
                    _ => {
                        let magic = MAGIC[rng.random_range(0..MAGIC.len())];
                        m.splice(at..at, magic.iter().copied());
                    }
                }
            }
            out.push(m);
        }
    }
    out
}

#[test]
fn openai_request() {
    for input in with_mutants(seeds("openai_request"), 500) {
        fuzzing::openai_request(&input);
    }
}

#[test]
fn embeddings_request() {
    for input in with_mutants(seeds("embeddings_request"), 500) {
        fuzzing::embeddings_request(&input);
    }
}

#[test]
fn embeddings_reply() {
    for input in with_mutants(seeds("embeddings_reply"), 500) {
        fuzzing::embeddings_reply(&input);
    }
}

#[test]
fn config() {
    for input in with_mutants(seeds("config"), 300) {
        fuzzing::config(&input);
    }
}

#[test]
fn replay_dataset() {
    for input in with_mutants(seeds("replay_dataset"), 300) {
        fuzzing::replay_dataset(&input);
    }
}

#[test]
fn sse() {
    for input in with_mutants(seeds("sse"), 500) {
        fuzzing::sse(&input);
    }
}

#[test]
fn plugin_output() {
    let sandbox = fuzzing::Sandbox::new();
    let liar = sandbox.liar(abi_liar());
    for input in with_mutants(seeds("plugin_output"), 300) {
        fuzzing::plugin_output(&liar, &input);
    }
}

/// Real components (the liar and a Rust guest) and their mutants; the mutants mostly stop
/// at parsing, so few are compiled. `ARBITER_WRITE_COMPONENT_SEEDS=<dir>` writes the two
/// components there, as the starting corpus of the `component` fuzz target.
#[test]
fn component() {
    let components = vec![abi_liar(), std::fs::read(guest("trivial")).unwrap()];
    if let Ok(dir) = std::env::var("ARBITER_WRITE_COMPONENT_SEEDS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/liar.wasm"), &components[0]).unwrap();
        std::fs::write(format!("{dir}/trivial.wasm"), &components[1]).unwrap();
    }
    let mut inputs = with_mutants(components, 20);
    inputs.extend(seeds("component"));
    let sandbox = fuzzing::Sandbox::new();
    for input in inputs {
        sandbox.component(&input);
    }
}
