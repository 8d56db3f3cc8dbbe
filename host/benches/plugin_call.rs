//! Plugin call latency: a fresh instance per call (instantiate + call) and a warm call,
//! for a trivial Rust verifier and the reference plugins.
//!
//!     cargo bench -p arbiter --bench plugin_call
//!
//! Guests are built with the same builder as `arbiter plugin build`.

use std::path::{Path, PathBuf};

use arbiter::authoring::{self, BuildOptions};
use arbiter::runtime::types::*;
use arbiter::runtime::{CallContext, Plugin, PluginOptions, Runtime, RuntimeConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn build(dir: &Path, file: &str) -> PathBuf {
    let options = BuildOptions {
        target_dir: Some(repo().join("target/wasm-plugins")),
        ..Default::default()
    };
    let out = authoring::build(dir, &options).expect("building the guest");
    out.components
        .into_iter()
        .find(|c| c.ends_with(file))
        .expect("component")
}

fn bench_calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let guests = [
        (
            "trivial-rust",
            build(&repo().join("tests/guests"), "trivial.wasm"),
            "#### 42",
        ),
        (
            "gsm8k-verifier",
            build(
                &repo().join("plugins/gsm8k-verifier"),
                "gsm8k_verifier.wasm",
            ),
            "6 * 7 = <<6*7=42>>42\n#### 42",
        ),
    ];
    let task = Task::from_prompt("bench", "What is 6 * 7?");
    let config = PluginConfig::new();
    for (name, path, answer) in guests {
        let candidate = Candidate {
            index: 0,
            model: "bench".into(),
            text: answer.into(),
        };
        let load = |warm: bool| -> Plugin {
            rt.block_on(runtime.load_file(
                &path,
                PluginOptions {
                    warm,
                    ..PluginOptions::default()
                },
            ))
            .unwrap()
        };
        for (mode, plugin) in [("instantiate+call", load(false)), ("warm call", load(true))] {
            c.bench_function(&format!("{mode}/{name}"), |b| {
                b.to_async(&rt).iter(|| async {
                    plugin
                        .verify(&config, &task, &candidate, CallContext::default())
                        .await
                        .unwrap()
                })
            });
        }
    }
}

criterion_group!(benches, bench_calls);
criterion_main!(benches);
