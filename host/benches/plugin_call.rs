//! Plugin call latency: a fresh instance per call (instantiate + call), a fresh instance
//! prepared ahead of the call (what a gateway that is not saturated sees), and a warm call,
//! for a trivial Rust verifier, the GSM8K verifier, and the same trivial verifier (the
//! `arbiter plugin new` template, identical behaviour in every language) in Rust, C,
//! Python, JavaScript and TypeScript.
//!
//!     cargo bench -p arbiter --bench plugin_call
//!     cargo bench -p arbiter --bench plugin_call -- template/python   # one guest
//!
//! Guests are built with the same builder as `arbiter plugin build`; a language whose
//! toolchain is missing is skipped with a message. Python/JS components are compiled
//! once into `target/plugin-bench-cache`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arbiter::authoring::new;
use arbiter::authoring::Language;
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

/// The `new` template verifier in `language`, created under `target/bench-templates`.
fn template(language: Language, name: &str) -> Option<PathBuf> {
    let parent = repo().join("target/bench-templates");
    std::fs::create_dir_all(&parent).unwrap();
    if !parent.join(name).exists() {
        new::create(language, PluginKind::Verifier, name, &parent).expect("template");
    }
    let options = BuildOptions {
        target_dir: Some(repo().join("target/wasm-plugins")),
        ..Default::default()
    };
    match authoring::build(&parent.join(name), &options) {
        Ok(out) => out.components.into_iter().next(),
        Err(e) => {
            eprintln!("skipping the {name} template: {e}");
            None
        }
    }
}

fn bench_calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(repo().join("target/plugin-bench-cache")),
        ..RuntimeConfig::default()
    };
    // Instances made only when a call arrives: the full cost of a fresh instance.
    let unprepared = Runtime::new(RuntimeConfig {
        prepared_instances_per_plugin: 0,
        ..config.clone()
    })
    .unwrap();
    let runtime = Runtime::new(config).unwrap();
    let mut guests = vec![
        (
            "trivial-rust".to_string(),
            build(&repo().join("tests/guests"), "trivial.wasm"),
            "#### 42",
        ),
        (
            "gsm8k-verifier".to_string(),
            build(
                &repo().join("plugins/gsm8k-verifier"),
                "gsm8k_verifier.wasm",
            ),
            "6 * 7 = <<6*7=42>>42\n#### 42",
        ),
    ];
    for (language, name) in [
        (Language::Rust, "rust"),
        (Language::C, "c"),
        (Language::Python, "python"),
        (Language::JavaScript, "js"),
        (Language::TypeScript, "ts"),
    ] {
        if let Some(path) = template(language, &format!("bench-{name}")) {
            guests.push((format!("template/{name}"), path, "#### 42"));
        }
    }
    let task = Task::from_prompt("bench", "What is 6 * 7?");
    let config = PluginConfig::new();
    for (name, path, answer) in guests {
        let candidate = Candidate {
            index: 0,
            model: "bench".into(),
            text: answer.into(),
            ..Candidate::default()
        };
        let load = |runtime: &Runtime, warm: bool| -> Plugin {
            rt.block_on(runtime.load_file(
                &path,
                PluginOptions {
                    warm,
                    ..PluginOptions::default()
                },
            ))
            .unwrap()
        };
        // Each call starts once the next instance is ready, as between requests on a
        // gateway with spare time; only the call itself is timed.
        let prepared = load(&runtime, false);
        c.bench_function(&format!("prepared call/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    rt.block_on(async {
                        while prepared.prepared_instances() == 0 {
                            tokio::task::yield_now().await;
                        }
                    });
                    let t = Instant::now();
                    rt.block_on(prepared.verify(
                        &config,
                        &task,
                        &candidate,
                        CallContext::default(),
                    ))
                    .unwrap();
                    total += t.elapsed();
                }
                total
            })
        });
        for (mode, plugin) in [
            ("instantiate+call", load(&unprepared, false)),
            ("warm call", load(&runtime, true)),
        ] {
            if mode == "warm call" && !plugin.is_warm() {
                eprintln!("{name} does not declare itself stateless: no warm call");
                continue;
            }
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
