//! Plugin runtime tests: the reference plugins through the real sandbox, the hostile-plugin
//! battery, fresh vs warm instances, the compiled-artifact cache, bounded compilation and
//! 1,000 concurrent calls.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arbiter::runtime::types::*;
use arbiter::runtime::{
    AllowedModels, CallContext, CompileIsolation, CompileLimits, Compiler, EngineProfile, Error,
    Grants, Limits, LoadSource, ModelAccess, ModelContext, Outcome, Plugin, PluginOptions,
    PoolSizes, Runtime, RuntimeConfig,
};
use common::*;

fn opts() -> PluginOptions {
    PluginOptions::default()
}

fn limited(deadline_ms: u64) -> PluginOptions {
    PluginOptions {
        limits: Limits {
            deadline: Duration::from_millis(deadline_ms),
            memory_bytes: 64 << 20,
            ..Limits::default()
        },
        ..PluginOptions::default()
    }
}

async fn load(name: &str, options: PluginOptions) -> Result<Plugin, Error> {
    shared_runtime().load_file(&guest(name), options).await
}

fn task(prompt: &str) -> Task {
    Task::from_prompt("t", prompt)
}

fn cand(text: &str) -> Candidate {
    Candidate {
        index: 0,
        model: "m".into(),
        text: text.into(),
        ..Candidate::default()
    }
}

fn cfg(pairs: &[(&str, &str)]) -> PluginConfig {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One verify call with an empty config, with its stats.
async fn call(plugin: &Plugin, text: &str) -> Result<Outcome<Verdict>, Error> {
    plugin
        .verify(
            &PluginConfig::new(),
            &task("q"),
            &cand(text),
            CallContext::default(),
        )
        .await
}

async fn verify(plugin: &Plugin, text: &str) -> Result<Verdict, Error> {
    call(plugin, text).await.map(|o| o.value)
}

// ---------------------------------------------------------------- reference plugins

#[tokio::test]
async fn gsm8k_verifier_on_dev_rows() {
    let rt = shared_runtime();
    let plugin = rt
        .load_file(&reference_plugin("gsm8k-verifier"), opts())
        .await
        .unwrap();
    assert_eq!(plugin.kind(), PluginKind::Verifier);
    assert_eq!(plugin.info().name, "gsm8k-verifier");
    let rows = dataset("gsm8k-dev.jsonl");
    let find = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    let judge = |row: serde_json::Value, model: &'static str| {
        let plugin = plugin.clone();
        async move {
            let c = row["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["model"] == model)
                .unwrap()
                .clone();
            let t = task(row["prompt"].as_str().unwrap());
            let k = Candidate {
                index: 0,
                model: model.into(),
                text: c["text"].as_str().unwrap().into(),
                ..Candidate::default()
            };
            (
                plugin
                    .verify(&PluginConfig::new(), &t, &k, CallContext::default())
                    .await
                    .unwrap()
                    .value,
                c["correct"].as_bool().unwrap(),
            )
        }
    };
    // Known rows: a correct worked answer, a wrong calculation, a truncated answer.
    let (v, correct) = judge(find("gsm8k/0"), "mixtral-8x7b-instruct").await;
    assert!(correct);
    assert_eq!(v.decision, Decision::Accept, "{v:?}");
    let (v, correct) = judge(find("gsm8k/14"), "mixtral-8x7b-instruct").await;
    assert!(!correct);
    assert_eq!(
        v.decision,
        Decision::Reject,
        "(12 / 20) x 100 = 55% must be caught: {v:?}"
    );
    assert!(v.checks.iter().any(|c| !c.passed));
    let (v, correct) = judge(find("gsm8k/4"), "mixtral-8x7b-instruct").await;
    assert!(!correct);
    assert_eq!(v.decision, Decision::Reject, "truncated answer: {v:?}");

    // Over the first 200 rows of the cheap model, an accepted answer is right more often
    // than an answer in general, and a rejected one less often: the signal is real.
    let mut tallies = [[0u32; 2]; 2]; // [accepted][correct]
    for row in rows.iter().take(200) {
        let (v, correct) = judge(row.clone(), "mixtral-8x7b-instruct").await;
        tallies[(v.decision == Decision::Accept) as usize][correct as usize] += 1;
    }
    let rate = |t: [u32; 2]| t[1] as f64 / (t[0] + t[1]).max(1) as f64;
    let accepted = rate(tallies[1]);
    let rejected = rate(tallies[0]);
    let base = (tallies[0][1] + tallies[1][1]) as f64 / 200.0;
    eprintln!("gsm8k verifier on 200 cheap answers: base {base:.3}, P(correct|accept) {accepted:.3}, P(correct|reject) {rejected:.3}, {tallies:?}");
    assert!(
        accepted > base + 0.05,
        "accept precision {accepted} vs base {base}"
    );
    assert!(
        rejected < base - 0.1,
        "reject rate {rejected} vs base {base}"
    );
}

/// A task offering `get_weather(city: string, days?: integer >= 1)`.
fn weather_task() -> Task {
    let mut task = task("Weather in Paris for 3 days?");
    task.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: "Weather for a city".into(),
        parameters: r#"{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1}},"required":["city"]}"#.into(),
    }];
    task
}

fn calling(arguments: &str) -> Candidate {
    Candidate {
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: arguments.into(),
        }],
        logprobs: vec![TokenLogprob {
            token: "{".into(),
            logprob: -0.25,
            top: vec![],
        }],
        ..cand("")
    }
}

/// A plugin built against contract 0.1.0 and one built against 0.2.0 run in one runtime,
/// on the same task: the old one sees the records it knows (no tools), the new one sees
/// the task's tools and the candidate's tool calls and checks them.
#[tokio::test]
async fn contract_0_1_and_0_2_plugins_side_by_side() {
    let old = load("contract-0-1", opts()).await.unwrap();
    let new = shared_runtime()
        .load_file(&reference_plugin("tool-args-verifier"), opts())
        .await
        .unwrap();
    assert_eq!(old.summary().contract_version, "0.1.0");
    assert_eq!(new.summary().contract_version, "0.2.0");
    let config = cfg(&[]);
    let task = weather_task();
    let verify = |plugin: Plugin, candidate: Candidate| {
        let (config, task) = (config.clone(), task.clone());
        async move {
            plugin
                .verify(&config, &task, &candidate, CallContext::default())
                .await
                .unwrap()
                .value
        }
    };
    let old_says = verify(old.clone(), cand("It is sunny.")).await;
    assert_eq!(old_says.decision, Decision::Accept, "{old_says:?}");
    assert!(old_says.reason.contains("1 message(s)"), "{old_says:?}");
    // A 0.1.0 plugin still judges a candidate that called tools: it sees the text only.
    let old_on_call = verify(old, calling(r#"{"city":"Paris"}"#)).await;
    assert!(
        old_on_call.reason.contains("0 bytes of text"),
        "{old_on_call:?}"
    );

    let good = verify(new.clone(), calling(r#"{"city":"Paris","days":3}"#)).await;
    assert_eq!(good.decision, Decision::Accept, "{good:?}");
    let bad = verify(new.clone(), calling(r#"{"city":7,"days":"three"}"#)).await;
    assert_eq!(bad.decision, Decision::Reject, "{bad:?}");
    assert!(
        bad.checks
            .iter()
            .any(|c| !c.passed && c.name.contains("get_weather")),
        "{bad:?}"
    );
    let unknown = Candidate {
        tool_calls: vec![ToolCall {
            id: "c".into(),
            name: "book_flight".into(),
            arguments: "{}".into(),
        }],
        ..cand("")
    };
    let refused = verify(new.clone(), unknown).await;
    assert_eq!(refused.decision, Decision::Reject);
    assert!(
        refused.reason.contains("not a tool the request offers"),
        "{refused:?}"
    );
    let text_only = verify(new, cand("It is sunny.")).await;
    assert_eq!(text_only.decision, Decision::Abstain, "{text_only:?}");
}

#[tokio::test]
async fn json_schema_verifier_uses_schema_from_config() {
    let plugin = shared_runtime()
        .load_file(&reference_plugin("json-schema-verifier"), opts())
        .await
        .unwrap();
    let schema = r#"{"type":"object","required":["name","age"],"properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}}}"#;
    let config = cfg(&[("schema", schema)]);
    plugin.check_config(&config).await.unwrap();
    let run = |text: &'static str| {
        let (plugin, config) = (plugin.clone(), config.clone());
        async move {
            plugin
                .verify(
                    &config,
                    &task("give JSON"),
                    &cand(text),
                    CallContext::default(),
                )
                .await
                .unwrap()
                .value
        }
    };
    assert_eq!(
        run(r#"{"name":"Ada","age":36}"#).await.decision,
        Decision::Accept
    );
    assert_eq!(
        run("Sure! ```json\n{\"name\":\"Ada\",\"age\":36}\n```")
            .await
            .decision,
        Decision::Accept
    );
    let bad = run(r#"{"name":"Ada","age":-1}"#).await;
    assert_eq!(bad.decision, Decision::Reject);
    assert!(
        bad.checks.iter().any(|c| c.name.contains("/age")),
        "{bad:?}"
    );
    assert_eq!(run("no json here").await.decision, Decision::Reject);
    // Bad settings are refused with the plugin's own typed error.
    let err = plugin
        .check_config(&cfg(&[("schema", "{not json")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Plugin(PluginFailure::InvalidConfig(_))),
        "{err:?}"
    );
    let err = plugin
        .check_config(&cfg(&[("schema", schema), ("typo", "1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Plugin(PluginFailure::InvalidConfig(m)) if m.contains("typo")));
}

#[tokio::test]
async fn prompt_router_routes_by_difficulty() {
    let plugin = shared_runtime()
        .load_file(&reference_plugin("prompt-router"), opts())
        .await
        .unwrap();
    let options = vec![
        ModelOption {
            name: "cheap".into(),
            input_price: 0.6,
            output_price: 0.6,
            stats: None,
        },
        ModelOption {
            name: "pricey".into(),
            input_price: 10.0,
            output_price: 30.0,
            stats: None,
        },
    ];
    let config = cfg(&[("threshold", "0.5"), ("cheap-samples", "3")]);
    let easy = plugin
        .route(
            &config,
            &task("What is 2 + 2?"),
            &options,
            CallContext::default(),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        easy.steps
            .iter()
            .map(|s| s.target.as_str())
            .collect::<Vec<_>>(),
        ["cheap", "pricey"]
    );
    assert_eq!(easy.steps[0].samples, 3);
    let hard_prompt = format!(
        "Prove the integral identity for {}",
        "x1 + x2 * 3.5 - 7 ".repeat(100)
    );
    let hard = plugin
        .route(
            &config,
            &task(&hard_prompt),
            &options,
            CallContext::default(),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        hard.steps
            .iter()
            .map(|s| s.target.as_str())
            .collect::<Vec<_>>(),
        ["pricey"]
    );
    let err = plugin
        .route(
            &cfg(&[("cheap", "nope")]),
            &task("hi"),
            &options,
            CallContext::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Plugin(PluginFailure::InvalidInput(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn numbered_decomposer_plans_and_composes() {
    let plugin = shared_runtime()
        .load_file(&reference_plugin("numbered-decomposer"), opts())
        .await
        .unwrap();
    let t = task("A farm has 3 cows and 5 hens.\n1. How many legs in all?\n2. How many animals?\n3. How many heads?");
    let plan = plugin
        .decompose(&PluginConfig::new(), &t, CallContext::default())
        .await
        .unwrap()
        .value;
    assert_eq!(plan.subtasks.len(), 3);
    assert!(plan.subtasks[0].prompt.starts_with("A farm has 3 cows"));
    assert!(plan.subtasks[1].prompt.ends_with("How many animals?"));
    let results: Vec<Subresult> = plan
        .subtasks
        .iter()
        .zip(["22", "8", "8"])
        .map(|(s, a)| Subresult {
            id: s.id.clone(),
            answer: a.into(),
            model: "m".into(),
            score: None,
        })
        .collect();
    let answer = plugin
        .compose(&PluginConfig::new(), &t, &results, CallContext::default())
        .await
        .unwrap()
        .value;
    assert_eq!(answer, "1. 22\n\n2. 8\n\n3. 8");
    let single = plugin
        .decompose(
            &PluginConfig::new(),
            &task("Just one question?"),
            CallContext::default(),
        )
        .await
        .unwrap()
        .value;
    assert!(single.subtasks.is_empty());
    // The wrong call for a plugin's kind is a typed error, not a trap.
    let err = verify(&plugin, "x").await.unwrap_err();
    assert!(matches!(
        err,
        Error::WrongKind {
            expected: PluginKind::Verifier,
            actual: PluginKind::Decomposer
        }
    ));
}

// ---------------------------------------------------------------- hostile battery

/// Asserts `f` fails with an error matching `check`, within `bound`.
async fn fails_within<F, T>(bound: Duration, f: F, check: impl Fn(&Error) -> bool) -> Error
where
    F: std::future::Future<Output = Result<T, Error>>,
    T: std::fmt::Debug,
{
    let started = Instant::now();
    let result = f.await;
    let elapsed = started.elapsed();
    let err = match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    };
    assert!(check(&err), "unexpected error: {err:?}");
    assert!(
        elapsed < bound,
        "took {elapsed:?} (bound {bound:?}) for {err}"
    );
    err
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let plugin = load("spin", limited(200)).await.unwrap();
    fails_within(
        Duration::from_secs(3),
        verify(&plugin, "x"),
        |e| matches!(e, Error::DeadlineExceeded(d) if *d == Duration::from_millis(200)),
    )
    .await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_cap() {
    let plugin = load("membomb", limited(5_000)).await.unwrap();
    let err = fails_within(Duration::from_secs(10), verify(&plugin, "x"), |e| {
        matches!(e, Error::MemoryLimit { .. })
    })
    .await;
    if let Error::MemoryLimit { limit, requested } = err {
        assert_eq!(limit, 64 << 20);
        assert!(requested > limit);
    }
}

#[tokio::test]
async fn unbounded_recursion_is_a_stack_overflow() {
    let plugin = load("recurse", limited(5_000)).await.unwrap();
    fails_within(Duration::from_secs(10), verify(&plugin, "x"), |e| {
        matches!(e, Error::StackOverflow { .. })
    })
    .await;
}

#[tokio::test]
async fn panic_is_a_trap_with_message_and_backtrace() {
    let plugin = load("panic", limited(1_000)).await.unwrap();
    let err = fails_within(Duration::from_secs(3), verify(&plugin, "payload"), |e| {
        matches!(e, Error::Trap { .. })
    })
    .await;
    let Error::Trap { message, backtrace } = err else {
        unreachable!()
    };
    assert!(
        message.contains("boom: the verifier panicked on \"payload\""),
        "{message}"
    );
    assert!(
        backtrace.unwrap_or_default().contains("verify"),
        "backtrace names the guest function"
    );
}

#[tokio::test]
async fn huge_output_is_refused() {
    let plugin = load("huge-output", limited(5_000)).await.unwrap();
    fails_within(Duration::from_secs(10), verify(&plugin, "x"), |e| matches!(e, Error::OutputTooLarge { size, limit } if *size > *limit && *limit == 1 << 20)).await;
}

#[tokio::test]
async fn log_and_stdout_floods_hit_the_log_budget() {
    for name in ["log-flood", "stdout-flood"] {
        let plugin = load(name, limited(5_000)).await.unwrap();
        fails_within(
            Duration::from_secs(10),
            verify(&plugin, "x"),
            |e| matches!(e, Error::LogLimit { limit } if *limit == 64 << 10),
        )
        .await;
    }
}

/// A component that instantiates more core modules than its plugin's limit fails with a
/// typed error rather than taking more of the instance pool; the default admits it.
#[tokio::test]
async fn core_instance_counts_are_capped_per_plugin() {
    let tight = PluginOptions {
        limits: Limits {
            instances: 2,
            ..Limits::default()
        },
        ..PluginOptions::default()
    };
    // The Rust guest instantiates 3 core modules (its code, the WASI adapter, a shim);
    // loading instantiates it once to read its info, so that is where it fails.
    let err = load("trivial", tight)
        .await
        .err()
        .expect("loads with 2 instances");
    assert!(matches!(err, Error::ResourceLimit(_)), "{err:?}");
    let plugin = load("trivial", opts()).await.unwrap();
    verify(&plugin, "x").await.unwrap();
}

/// Memory spent on the host's side of WASI (random bytes, handles) is outside the guest's
/// memory cap, so WASI's own allowances are capped too.
#[tokio::test]
async fn wasi_random_bytes_and_handles_are_capped() {
    let plugin = load("wasi-flood", limited(5_000)).await.unwrap();
    for (mode, says) in [
        ("random", "random bytes"),
        ("handles", "16384 WASI handles"),
    ] {
        fails_within(
            Duration::from_secs(10),
            verify(&plugin, mode),
            |e| matches!(e, Error::ResourceLimit(m) if m.contains(says)),
        )
        .await;
    }
}

#[tokio::test]
async fn out_of_range_score_is_invalid_output() {
    let plugin = load("bad-score", opts()).await.unwrap();
    fails_within(
        Duration::from_secs(3),
        verify(&plugin, "x"),
        |e| matches!(e, Error::InvalidOutput(m) if m.contains("1.5")),
    )
    .await;
}

#[tokio::test]
async fn plugins_see_no_files_environment_or_network() {
    // SAFETY: set before any plugin runs; tests read it only through the sandbox.
    unsafe { std::env::set_var("ARBITER_TEST_SECRET", "hunter2") };
    let plugin = load("snoop", opts()).await.unwrap();
    let err = verify(&plugin, "x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Plugin(PluginFailure::Failed(m)) if m.contains("sandbox held")),
        "the guest saw something: {err}"
    );
}

#[tokio::test]
async fn wrong_world_is_refused_at_load() {
    let err = load("wrong-world", opts())
        .await
        .err()
        .expect("must not load");
    let Error::WrongWorld(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("greet"),
        "names what the component exports: {message}"
    );
    assert!(
        message.contains("arbiter:plugin/verification@0.2.0"),
        "names what was expected: {message}"
    );
}

struct EchoJudge {
    delay: Duration,
}

#[async_trait::async_trait]
impl ModelAccess for EchoJudge {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ModelError> {
        tokio::time::sleep(self.delay).await;
        assert!(request.messages[0]
            .content
            .contains("Is `42` a good answer"));
        Ok(Completion {
            text: "yes".into(),
            model: "judge-1".into(),
            input_tokens: 10,
            output_tokens: 1,
        })
    }
}

#[tokio::test]
async fn model_capability_is_gated() {
    // Without the grant the plugin does not even load, and says why.
    let err = load("wants-model", opts())
        .await
        .err()
        .expect("must not load");
    match &err {
        Error::CapabilityNotGranted { capability, import } => {
            assert_eq!(capability, "model");
            assert_eq!(import, "arbiter:plugin/model@0.2.0");
        }
        other => panic!("{other:?}"),
    }
    // It names the configuration key that grants it.
    assert!(err.to_string().contains("grants = [\"model\"]"), "{err}");
    // With the grant, calls reach the host's model access.
    let granted = PluginOptions {
        grants: Grants::from_names(&["model"]).unwrap(),
        ..limited(500)
    };
    let plugin = load("wants-model", granted).await.unwrap();
    let ctx = CallContext {
        model: Some(ModelContext::new(Arc::new(EchoJudge {
            delay: Duration::ZERO,
        }))),
        ..CallContext::default()
    };
    let v = plugin
        .verify(&PluginConfig::new(), &task("6*7?"), &cand("42"), ctx)
        .await
        .unwrap()
        .value;
    assert_eq!(v.decision, Decision::Accept);
    assert!(v.reason.contains("judge-1"));
    // Granted but no model service in this context: the plugin gets `denied`, not a crash.
    let err = plugin
        .verify(
            &PluginConfig::new(),
            &task("6*7?"),
            &cand("42"),
            CallContext::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Plugin(PluginFailure::Failed(m)) if m.contains("Denied")),
        "{err:?}"
    );
    // A host call that blocks past the deadline is cut by the outer timeout.
    let slow = CallContext {
        model: Some(ModelContext::new(Arc::new(EchoJudge {
            delay: Duration::from_secs(30),
        }))),
        ..CallContext::default()
    };
    fails_within(
        Duration::from_secs(5),
        plugin.verify(&PluginConfig::new(), &task("6*7?"), &cand("42"), slow),
        |e| matches!(e, Error::DeadlineExceeded(_)),
    )
    .await;
}

/// Answers with the model it was asked for.
struct NamedJudge {
    asked: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

#[async_trait::async_trait]
impl ModelAccess for NamedJudge {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ModelError> {
        self.asked.lock().unwrap().push(request.model.clone());
        Ok(Completion {
            text: "yes".into(),
            model: request.model.unwrap_or_else(|| "unnamed".into()),
            input_tokens: 10,
            output_tokens: 1,
        })
    }
}

/// A call restricted to some models reaches only those, one naming no model gets the
/// cheapest of them, and one naming another is denied before the host's models are asked.
#[tokio::test]
async fn model_capability_keeps_to_the_allowed_models() {
    let granted = PluginOptions {
        grants: Grants::from_names(&["model"]).unwrap(),
        ..limited(500)
    };
    let plugin = load("wants-model", granted).await.unwrap();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let access = Arc::new(NamedJudge {
        asked: asked.clone(),
    });
    let allowed = Arc::new(AllowedModels::new([
        ("large".to_string(), 2.0),
        ("small".to_string(), 0.2),
    ]));
    let judge = |model: Option<&str>| {
        let mut config = PluginConfig::new();
        if let Some(m) = model {
            config.insert("model".into(), m.into());
        }
        let ctx = CallContext {
            model: Some(ModelContext::restricted(access.clone(), allowed.clone())),
            ..CallContext::default()
        };
        let plugin = plugin.clone();
        async move {
            plugin
                .verify(&config, &task("6*7?"), &cand("42"), ctx)
                .await
        }
    };
    let named = judge(Some("large")).await.unwrap().value;
    assert!(named.reason.contains("judge large"), "{}", named.reason);
    let unnamed = judge(None).await.unwrap().value;
    assert!(unnamed.reason.contains("judge small"), "{}", unnamed.reason);
    let err = judge(Some("other")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Plugin(PluginFailure::Failed(m)) if m.contains("Denied") && m.contains("`other`")),
        "{err:?}"
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [Some("large".to_string()), Some("small".to_string())]
    );
}

#[tokio::test]
async fn non_components_are_refused_with_what_they_are() {
    let rt = shared_runtime();
    let mut random = vec![0u8; 4096];
    let mut x: u32 = 12345;
    for b in random.iter_mut() {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let component = std::fs::read(guest("trivial")).unwrap();
    let truncated = component[..component.len() / 2].to_vec();
    let mut corrupted = component.clone();
    let mid = corrupted.len() / 3;
    corrupted[mid..mid + 64].fill(0xff);
    for (what, bytes) in [
        ("empty", vec![]),
        ("random", random),
        ("core module", core_module),
        ("truncated", truncated),
        ("corrupted", corrupted),
    ] {
        let err = rt
            .load(bytes, opts())
            .await
            .err()
            .unwrap_or_else(|| panic!("{what} loaded"));
        assert!(
            matches!(err, Error::NotAComponent(_) | Error::Malformed(_)),
            "{what}: {err:?}"
        );
    }
}

#[tokio::test]
async fn hostile_plugins_do_not_disturb_other_calls() {
    let trivial = load("trivial", opts()).await.unwrap();
    let hostile: Vec<Plugin> = futures::future::join_all(
        [
            "spin",
            "membomb",
            "recurse",
            "panic",
            "log-flood",
            "huge-output",
        ]
        .map(|n| load(n, limited(1_500))),
    )
    .await
    .into_iter()
    .map(|p| p.unwrap())
    .collect();
    let bad = hostile.iter().map(|p| {
        let p = p.clone();
        tokio::spawn(async move { verify(&p, "x").await })
    });
    let good = (0..200).map(|i| {
        let p = trivial.clone();
        tokio::spawn(async move { verify(&p, &format!("answer {i}")).await })
    });
    let bad: Vec<_> = bad.collect();
    let good: Vec<_> = good.collect();
    for h in good {
        assert_eq!(h.await.unwrap().unwrap().decision, Decision::Accept);
    }
    for h in bad {
        assert!(h.await.unwrap().is_err());
    }
}

// ---------------------------------------------------------------- compilers

/// A runtime compiling with `compiler`, fuel metered.
fn runtime_with(compiler: Compiler) -> Runtime {
    Runtime::new(RuntimeConfig {
        profile: EngineProfile {
            compiler,
            fuel: true,
            ..EngineProfile::default()
        },
        ..test_config()
    })
    .expect("runtime")
}

/// Winch, the baseline compiler the build's warm-up uses, runs a plugin as Cranelift
/// does: the same verdicts, metered, under the same deadline. (Its fuel counts differ by
/// ~1%: the two charge some control operators differently.)
#[tokio::test]
async fn winch_runs_plugins_as_cranelift_does() {
    let gsm8k = reference_plugin("gsm8k-verifier");
    let mut runs = Vec::new();
    for compiler in [Compiler::Cranelift, Compiler::Winch] {
        let runtime = runtime_with(compiler);
        let plugin = runtime.load_file(&gsm8k, opts()).await.unwrap();
        let mut run = Vec::new();
        for text in ["2 + 2 = 4\n#### 4", "2 + 2 = 5\n#### 5", "I cannot say."] {
            let out = call(&plugin, text).await.unwrap();
            let fuel = out.stats.fuel.expect("fuel is metered");
            assert!(fuel > 0);
            run.push((out.value, fuel));
        }
        let spin = runtime
            .load_file(&guest("spin"), limited(200))
            .await
            .unwrap();
        fails_within(Duration::from_secs(3), verify(&spin, "x"), |e| {
            matches!(e, Error::DeadlineExceeded(_))
        })
        .await;
        runs.push(run);
    }
    let (cranelift, winch) = (&runs[0], &runs[1]);
    assert_ne!(cranelift[0].0.decision, cranelift[1].0.decision);
    for ((c_verdict, c_fuel), (w_verdict, w_fuel)) in cranelift.iter().zip(winch) {
        assert_eq!(c_verdict, w_verdict);
        assert!(
            c_fuel.abs_diff(*w_fuel) * 20 < *c_fuel,
            "fuel {c_fuel} vs {w_fuel}"
        );
    }
}

/// A proposal Winch does not implement is a load error, not a crash; Cranelift runs the
/// same component (the warm-up falls back to it: `tests/authoring.rs`).
#[tokio::test]
async fn winch_refuses_a_tail_call_with_an_error() {
    let component = abi_liar_with(tail_calling_liar);
    let err = runtime_with(Compiler::Winch)
        .load(component.clone(), opts())
        .await
        .map(|p| p.info().name.clone())
        .unwrap_err();
    assert!(err.to_string().contains("tail"), "{err}");
    let plugin = runtime_with(Compiler::Cranelift)
        .load(component, opts())
        .await
        .unwrap();
    assert_eq!(plugin.info().name, "abi-liar");
}

// ---------------------------------------------------------------- the ABI boundary

/// Has the liar return `image`, `misalign` bytes past its aligned buffer.
async fn lie(plugin: &Plugin, image: &[u8], misalign: u32) -> Result<Verdict, Error> {
    let text: String = image.iter().map(|b| format!("{b:02x}")).collect();
    let candidate = Candidate {
        index: misalign,
        model: "m".into(),
        text,
        ..Candidate::default()
    };
    plugin
        .verify(
            &PluginConfig::new(),
            &task("q"),
            &candidate,
            CallContext::default(),
        )
        .await
        .map(|o| o.value)
}

/// Canonical-ABI lifting is where hosts have had bugs (string transcoding, `flags`): a
/// guest that returns out-of-bounds pointers, invalid UTF-8, unknown discriminants or a
/// misaligned return area gets a typed `invalid_output` error, never a host panic, and
/// the next call is unaffected.
#[tokio::test]
async fn malformed_values_from_a_guest_are_invalid_output() {
    let plugin = shared_runtime().load(abi_liar(), opts()).await.unwrap();

    // The baseline proves the layout above is the one the host lifts.
    let v = lie(&plugin, &verdict_image(), 0).await.unwrap();
    assert_eq!(
        (v.score, v.decision, v.reason.as_str()),
        (0.75, Decision::Accept, "fine")
    );
    assert_eq!(v.checks.len(), 1);
    assert_eq!(
        (v.checks[0].name.as_str(), v.checks[0].passed),
        ("sum=3", true)
    );
    assert_eq!(v.details, Some(serde_json::json!({})));

    // `err(failed("fine"))` is the plugin's own error, not a malformed value.
    let mut failed = verdict_image();
    failed[0] = 1;
    failed[8] = 2;
    put_u32(&mut failed, 12, LIAR_BUF + 100);
    put_u32(&mut failed, 16, 4);
    let err = lie(&plugin, &failed, 0).await.unwrap_err();
    assert!(
        matches!(&err, Error::Plugin(PluginFailure::Failed(m)) if m == "fine"),
        "{err:?}"
    );

    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, u32); 11] = [
        ("result discriminant 2", |b| b[0] = 2, 0),
        ("decision discriminant 3", |b| b[16] = 3, 0),
        ("details option discriminant 2", |b| b[36] = 2, 0),
        ("message option discriminant 7", |b| b[84] = 7, 0),
        (
            "plugin-error discriminant 3",
            |b| {
                b[0] = 1;
                b[8] = 3
            },
            0,
        ),
        (
            "reason past the end of memory",
            |b| put_u32(b, 20, 0xffff_fff0),
            0,
        ),
        (
            "reason longer than memory",
            |b| put_u32(b, 24, 0x7fff_ffff),
            0,
        ),
        (
            "reason not UTF-8",
            |b| b[100..102].copy_from_slice(&[0xff, 0xfe]),
            0,
        ),
        (
            "a quarter-billion checks",
            |b| put_u32(b, 32, 0x1000_0000),
            0,
        ),
        (
            "checks list misaligned",
            |b| put_u32(b, 28, LIAR_BUF + 73),
            0,
        ),
        ("return area misaligned", |_| {}, 4),
    ];
    for (what, edit, misalign) in cases {
        let mut image = verdict_image();
        edit(&mut image);
        let err = lie(&plugin, &image, misalign).await.unwrap_err();
        assert!(matches!(err, Error::InvalidOutput(_)), "{what}: {err:?}");
        assert!(err.is_call_failure(), "{what}");
    }

    // Seeded random edits of the well-formed image: every outcome is a verdict the host
    // accepted or a typed call failure. Both must occur, or the edits test nothing.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..2_000 {
        let mut image = verdict_image();
        for _ in 0..1 + next() % 4 {
            let at = (next() % 112) as usize;
            let interesting = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xfe, 0xff];
            image[at] = if next() % 2 == 0 {
                interesting[(next() % 8) as usize]
            } else {
                next() as u8
            };
        }
        let misalign = if next() % 16 == 0 {
            (next() % 8) as u32
        } else {
            0
        };
        match lie(&plugin, &image, misalign).await {
            Ok(v) => {
                assert!((0.0..=1.0).contains(&v.score), "{v:?}");
                accepted += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::InvalidOutput(_) | Error::Plugin(_)),
                    "{image:02x?}: {e:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(accepted > 100 && refused > 100, "{accepted} / {refused}");
    assert_eq!(
        lie(&plugin, &verdict_image(), 0).await.unwrap().reason,
        "fine"
    );
}

/// The host moves arguments into memory the guest's `cabi_realloc` hands out: an
/// allocation past the end of memory or misaligned fails that call alone, typed.
#[tokio::test]
async fn a_lying_allocator_fails_the_call_not_the_host() {
    let honest = shared_runtime().load(abi_liar(), opts()).await.unwrap();
    for (what, allocation) in [
        ("past the end of memory", "(i32.const -16)"),
        ("misaligned", "(i32.or (local.get $p) (i32.const 1))"),
    ] {
        let component = abi_liar_with(|wat| {
            let marker = "(local.get $p)) ;; the allocation";
            assert!(wat.contains(marker));
            wat.replace(marker, &format!("{allocation}) ;; the allocation"))
        });
        let liar = shared_runtime().load(component, opts()).await.unwrap();
        let err = lie(&liar, &verdict_image(), 0).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOutput(m) if m.contains("realloc")),
            "{what}: {err:?}"
        );
        assert_eq!(
            lie(&honest, &verdict_image(), 0).await.unwrap().reason,
            "fine"
        );
    }
}

// ---------------------------------------------------------------- instances

#[tokio::test]
async fn fresh_instance_per_call_unless_warm() {
    let fresh = load("stateful", opts()).await.unwrap();
    assert!(!fresh.is_warm());
    for _ in 0..3 {
        assert_eq!(
            verify(&fresh, "x").await.unwrap().reason,
            "1",
            "state leaked between calls"
        );
    }
    let warm = load(
        "stateful",
        PluginOptions {
            warm: true,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(warm.is_warm());
    let counts: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(verify(&warm, "x").await.unwrap().reason);
        }
        v
    };
    assert_eq!(counts, ["1", "2", "3"], "warm calls reuse one instance");
    // A plugin that does not declare itself stateless never gets warm instances.
    let not_stateless = load(
        "panic",
        PluginOptions {
            warm: true,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(!not_stateless.is_warm());
}

#[tokio::test]
async fn a_trapped_warm_instance_is_discarded() {
    let plugin = load(
        "stateful",
        PluginOptions {
            warm: true,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(verify(&plugin, "x").await.unwrap().reason, "1");
    // The reused instance traps and must not go back to the pool.
    let err = verify(&plugin, "trap").await.unwrap_err();
    assert!(matches!(err, Error::Trap { .. }), "{err:?}");
    assert_eq!(
        verify(&plugin, "x").await.unwrap().reason,
        "1",
        "a fresh instance replaced the trapped one"
    );
    // A spent budget starts nothing.
    let ctx = CallContext {
        deadline: Some(Duration::ZERO),
        ..CallContext::default()
    };
    let err = plugin
        .verify(&PluginConfig::new(), &task("q"), &cand("x"), ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded(_)), "{err:?}");
    assert_eq!(
        verify(&plugin, "x").await.unwrap().reason,
        "2",
        "the warm instance survived the refused call"
    );
}

/// Waits (bounded) until the host has a fresh instance of `plugin` ready.
async fn until_prepared(plugin: &Plugin) {
    let since = Instant::now();
    while plugin.prepared_instances() == 0 {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "no instance was prepared"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn prepared_instances_serve_one_call_each() {
    let plugin = load("stateful", opts()).await.unwrap();
    assert!(!plugin.is_warm());
    for text in ["x", "trap", "x", "x"] {
        until_prepared(&plugin).await;
        let out = call(&plugin, text).await;
        if text == "trap" {
            assert!(matches!(out, Err(Error::Trap { .. })), "{out:?}");
            continue;
        }
        let out = out.unwrap();
        assert_eq!(out.value.reason, "1", "an instance served a second call");
        assert_eq!(
            out.stats.instantiate,
            Some(Duration::ZERO),
            "the call waited for its instance to be created"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_instances_stay_within_the_pool() {
    // 4 slots: 2 for calls in flight (until their instance is torn down), 2 for instances
    // kept between calls. Three plugins want one prepared instance each.
    let rt = Runtime::new(RuntimeConfig {
        pool: PoolSizes {
            component_instances: 4,
            ..PoolSizes::default()
        },
        max_concurrent_calls: Some(2),
        ..test_config()
    })
    .unwrap();
    let mut plugins = Vec::new();
    for _ in 0..3 {
        plugins.push(rt.load_file(&guest("stateful"), opts()).await.unwrap());
    }
    let mut handles = Vec::new();
    for i in 0..300 {
        let plugin = plugins[i % 3].clone();
        handles.push(tokio::spawn(async move { verify(&plugin, "x").await }));
    }
    for h in handles {
        // An oversubscribed pool fails instantiation with a resource limit error.
        assert_eq!(h.await.unwrap().unwrap().reason, "1");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready: usize = plugins.iter().map(Plugin::prepared_instances).sum();
    assert!((1..=2).contains(&ready), "{ready} prepared instances");
    // Unloading gives the slots back: a new plugin gets its prepared instance.
    drop(plugins);
    let fresh = rt.load_file(&guest("stateful"), opts()).await.unwrap();
    until_prepared(&fresh).await;
    // With preparation off, every call creates its instance.
    let unprepared = Runtime::new(RuntimeConfig {
        prepared_instances_per_plugin: 0,
        ..test_config()
    })
    .unwrap();
    let plugin = unprepared
        .load_file(&guest("stateful"), opts())
        .await
        .unwrap();
    let out = call(&plugin, "x").await.unwrap();
    assert!(out.stats.instantiate.unwrap() > Duration::ZERO);
    assert_eq!(plugin.prepared_instances(), 0);
}

// ---------------------------------------------------------------- cache and compilation

#[tokio::test]
async fn compiled_artifacts_are_cached_and_corruption_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().into()),
        ..test_config()
    };
    let bytes = std::fs::read(reference_plugin("gsm8k-verifier")).unwrap();

    let first = Runtime::new(config.clone())
        .unwrap()
        .load(bytes.clone(), opts())
        .await
        .unwrap();
    assert_eq!(first.load_report().source, LoadSource::Compiled);
    let rt = Runtime::new(config.clone()).unwrap();
    let second = rt.load(bytes.clone(), opts()).await.unwrap();
    assert_eq!(
        second.load_report().source,
        LoadSource::Disk,
        "second load is a deserialize"
    );
    assert_eq!(
        rt.load(bytes.clone(), opts())
            .await
            .unwrap()
            .load_report()
            .source,
        LoadSource::Memory
    );
    let path = rt.cache_path(&second.load_report().digest).unwrap();

    for damage in ["flip", "truncate"] {
        let mut file = std::fs::read(&path).unwrap();
        match damage {
            "flip" => {
                let mid = file.len() / 2;
                file[mid] ^= 0x55;
            }
            _ => file.truncate(file.len() / 3),
        }
        std::fs::write(&path, &file).unwrap();
        let rt = Runtime::new(config.clone()).unwrap();
        let again = rt.load(bytes.clone(), opts()).await.unwrap();
        assert_eq!(
            again.load_report().source,
            LoadSource::Compiled,
            "{damage}: corrupt entry rebuilt"
        );
        assert_eq!(
            verify(&again, "#### 4").await.unwrap().decision,
            Decision::Accept
        );
        let rt = Runtime::new(config.clone()).unwrap();
        assert_eq!(
            rt.load(bytes.clone(), opts())
                .await
                .unwrap()
                .load_report()
                .source,
            LoadSource::Disk,
            "{damage}: cache healed"
        );
    }
}

#[tokio::test]
async fn cache_entries_not_written_by_this_host_are_recompiled() {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("data/plugin-cache");
    let config = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..test_config()
    };
    let gsm = std::fs::read(reference_plugin("gsm8k-verifier")).unwrap();
    let other = std::fs::read(reference_plugin("json-schema-verifier")).unwrap();
    let rt = Runtime::new(config.clone()).unwrap();
    let gsm_digest = rt
        .load(gsm.clone(), opts())
        .await
        .unwrap()
        .load_report()
        .digest
        .clone();
    let other_digest = rt
        .load(other, opts())
        .await
        .unwrap()
        .load_report()
        .digest
        .clone();
    let gsm_path = rt.cache_path(&gsm_digest).unwrap();
    let genuine_other = std::fs::read(rt.cache_path(&other_digest).unwrap()).unwrap();

    // Private: the folder 0700, its key 0600 and beside it, not in it.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    let key = dir.path().join("data/plugin-cache.key");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);

    let reloaded = |label: &'static str| {
        let config = config.clone();
        let gsm = gsm.clone();
        async move {
            let rt = Runtime::new(config).unwrap();
            let p = rt.load(gsm, opts()).await.unwrap();
            assert_eq!(p.load_report().source, LoadSource::Compiled, "{label}");
            assert_eq!(
                verify(&p, "#### 4").await.unwrap().decision,
                Decision::Accept,
                "{label}: the real plugin runs"
            );
        }
    };
    // Another component's genuine entry, moved under this component's name.
    std::fs::write(&gsm_path, &genuine_other).unwrap();
    reloaded("swapped").await;
    // A real artifact behind the plain checksum anyone can compute.
    let payload = &genuine_other[46..];
    let mut planted = b"ARBITER-CWASM2".to_vec();
    planted.extend_from_slice(&Sha256::digest(payload));
    planted.extend_from_slice(payload);
    std::fs::write(&gsm_path, &planted).unwrap();
    reloaded("planted").await;
    // A new key (the old one lost): what the old one signed is rebuilt.
    std::fs::remove_file(&key).unwrap();
    reloaded("new key").await;
    assert_eq!(mode(&key), 0o600);
}

/// Starts a spinning call of `spin`, then a second whose caller can wait 100 ms; returns
/// the first call and the second's error, which must be `overloaded`.
async fn second_call_while_one_spins(
    spin: &Plugin,
) -> (tokio::task::JoinHandle<Result<Verdict, Error>>, Error) {
    let busy = tokio::spawn({
        let spin = spin.clone();
        async move { verify(&spin, "x").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ctx = CallContext {
        deadline: Some(Duration::from_millis(100)),
        ..CallContext::default()
    };
    let err = spin
        .verify(&PluginConfig::new(), &task("q"), &cand("x"), ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "overloaded", "{err}");
    (busy, err)
}

#[tokio::test]
async fn one_plugin_cannot_take_every_call_slot() {
    let config = RuntimeConfig {
        max_concurrent_calls: Some(4),
        max_calls_per_plugin: Some(1),
        ..test_config()
    };
    let rt = Runtime::new(config).unwrap();
    let spin = rt.load_file(&guest("spin"), limited(1000)).await.unwrap();
    let trivial = rt.load_file(&guest("trivial"), opts()).await.unwrap();
    // One spinning call holds its plugin's only slot, so a second, whose caller can wait
    // 100 ms, is refused as overloaded...
    let (busy, err) = second_call_while_one_spins(&spin).await;
    assert!(err.is_call_failure());
    // ...while another plugin's calls run at once.
    verify(&trivial, "x").await.unwrap();
    assert!(matches!(
        busy.await.unwrap(),
        Err(Error::DeadlineExceeded(_))
    ));
}

#[tokio::test]
async fn concurrent_calls_cannot_claim_more_memory_than_the_total() {
    // Room for one call at a 64 MiB cap: the memory caps, not the slots, are the limit.
    let config = RuntimeConfig {
        max_memory_total: Some(100 << 20),
        max_concurrent_calls: Some(8),
        max_calls_per_plugin: Some(8),
        ..test_config()
    };
    let rt = Runtime::new(config).unwrap();
    let spin = rt.load_file(&guest("spin"), limited(1000)).await.unwrap();
    let small = PluginOptions {
        limits: Limits {
            memory_bytes: 32 << 20,
            ..Limits::default()
        },
        ..PluginOptions::default()
    };
    let trivial = rt.load_file(&guest("trivial"), small).await.unwrap();
    // A second 64 MiB call does not fit beside the first within its caller's 100 ms...
    let (busy, err) = second_call_while_one_spins(&spin).await;
    assert!(err.to_string().contains("100 MiB"), "{err}");
    // ...a 32 MiB one does.
    verify(&trivial, "x").await.unwrap();
    assert!(matches!(
        busy.await.unwrap(),
        Err(Error::DeadlineExceeded(_))
    ));
    // Once the first call is gone, its share is back.
    assert!(matches!(
        verify(&spin, "x").await,
        Err(Error::DeadlineExceeded(_))
    ));
}

#[tokio::test]
async fn compilation_is_bounded_in_time_and_memory() {
    let bytes = std::fs::read(reference_plugin("json-schema-verifier")).unwrap();
    let slow = RuntimeConfig {
        compile_limits: CompileLimits {
            timeout: Duration::from_millis(1),
            memory_mib: 4096,
        },
        ..test_config()
    };
    let err = Runtime::new(slow)
        .unwrap()
        .load(bytes.clone(), opts())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::CompileTimeout(_)), "{err:?}");
    let small = RuntimeConfig {
        compile_limits: CompileLimits {
            timeout: Duration::from_secs(120),
            memory_mib: 48,
        },
        ..test_config()
    };
    let err = Runtime::new(small)
        .unwrap()
        .load(bytes, opts())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::CompileMemory(48) | Error::Compile(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn in_process_compilation_also_works() {
    let config = RuntimeConfig {
        compile: CompileIsolation::InProcess,
        ..RuntimeConfig::default()
    };
    let plugin = Runtime::new(config)
        .unwrap()
        .load_file(&guest("trivial"), opts())
        .await
        .unwrap();
    assert_eq!(
        verify(&plugin, "yes").await.unwrap().decision,
        Decision::Accept
    );
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parallel_calls_across_plugins() {
    let rt = shared_runtime();
    let trivial = rt.load_file(&guest("trivial"), opts()).await.unwrap();
    let math = rt
        .load_file(&reference_plugin("gsm8k-verifier"), opts())
        .await
        .unwrap();
    let math_warm = rt
        .load_file(
            &reference_plugin("gsm8k-verifier"),
            PluginOptions {
                warm: true,
                ..opts()
            },
        )
        .await
        .unwrap();
    let router = rt
        .load_file(&reference_plugin("prompt-router"), opts())
        .await
        .unwrap();
    let splitter = rt
        .load_file(&reference_plugin("numbered-decomposer"), opts())
        .await
        .unwrap();
    let options = vec![
        ModelOption {
            name: "a".into(),
            input_price: 1.0,
            output_price: 1.0,
            stats: None,
        },
        ModelOption {
            name: "b".into(),
            input_price: 9.0,
            output_price: 9.0,
            stats: None,
        },
    ];
    let mut handles = Vec::new();
    for i in 0..1000u32 {
        let (trivial, math, math_warm, router, splitter, options) = (
            trivial.clone(),
            math.clone(),
            math_warm.clone(),
            router.clone(),
            splitter.clone(),
            options.clone(),
        );
        handles.push(tokio::spawn(async move {
            let none = PluginConfig::new();
            match i % 5 {
                0 => assert_eq!(
                    verify(&trivial, &format!("{i}")).await.unwrap().decision,
                    Decision::Accept
                ),
                1 => {
                    let text = format!("{i} + 1 = <<{i}+1={}>>{}\n#### {}", i + 1, i + 1, i + 1);
                    assert_eq!(
                        verify(&math, &text).await.unwrap().decision,
                        Decision::Accept
                    );
                }
                2 => {
                    let text = format!("{i} + 1 = {}\n#### {}", i + 2, i + 2);
                    assert_eq!(
                        verify(&math_warm, &text).await.unwrap().decision,
                        Decision::Reject
                    );
                }
                3 => {
                    let d = router
                        .route(
                            &none,
                            &task(&format!("What is {i}?")),
                            &options,
                            CallContext::default(),
                        )
                        .await
                        .unwrap()
                        .value;
                    assert_eq!(d.steps[0].target, "a");
                }
                _ => {
                    let t = task(&format!("1. first {i}\n2. second {i}"));
                    let plan = splitter
                        .decompose(&none, &t, CallContext::default())
                        .await
                        .unwrap()
                        .value;
                    assert_eq!(plan.subtasks.len(), 2);
                    assert!(plan.subtasks[1].prompt.contains(&format!("second {i}")));
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}
