//! The main job as a user runs it: `arbiter serve` with no configuration (embedded
//! defaults: replay provider, SQLite, reference plugins), and `arbiter eval`.

use crate::common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn arbiter() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_arbiter"));
    c.current_dir(common::repo_root())
        .env("CARGO_TARGET_DIR", common::wasm_target_dir());
    c
}

/// Starts `command` (an `arbiter serve`) on a free port; returns the process with the key
/// it printed and its URL.
async fn serve(mut command: Command) -> (std::process::Child, String, String) {
    let mut child = command
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("ARBITER_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // First start: a tenant key and then an operator key are generated and printed
    // once; then the listening address.
    let (key, url) = tokio::task::spawn_blocking(move || {
        let mut key = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.trim().starts_with("sk-arbiter-") && key.is_none() {
                key = Some(line.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("Arbiter listening on ") {
                let url = rest.split_whitespace().next().unwrap().to_string();
                // stdout closes here (the reader is dropped): the gateway must keep serving.
                return (key.expect("a generated key before the address"), url);
            }
        }
        panic!("the gateway did not start");
    })
    .await
    .unwrap();
    (child, key, url)
}

fn terminate(child: &std::process::Child) {
    rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_embedded_defaults_answers_and_stops_gracefully() {
    let data = tempfile::tempdir().unwrap();
    let mut command = arbiter();
    command.args(["serve", "--data-dir"]).arg(data.path());
    let (mut child, key, url) = serve(command).await;
    let http = reqwest::Client::new();
    // The README's `curl` example, as written there.
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let body = readme
        .split("-d '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a `curl -d '{...}'` example in the README");
    let body: Value = serde_json::from_str(body).expect("the README's request is JSON");
    let resp: Value = http
        .post(format!("{url}/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Its prompt is a recorded one (spacing aside), answered by a recorded answer.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let asked = words(body["messages"][0]["content"].as_str().unwrap());
    let row = common::dataset("gsm8k-dev.jsonl")
        .into_iter()
        .find(|r| words(r["prompt"].as_str().unwrap()) == asked)
        .expect("the README's prompt is in data/gsm8k-dev.jsonl");
    let answer = resp["choices"][0]["message"]["content"].as_str();
    assert!(
        row["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["text"].as_str() == answer),
        "{resp}"
    );
    assert_eq!(resp["arbiter"]["pipeline"], body["model"]);
    // The README's Python example, with the key and address of this gateway.
    let python = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a Python example in the README")
        .replace("http://127.0.0.1:8080/v1", &url);
    let program = format!("KEY = {key:?}\n{python}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg("-c").arg(program).output()
    })
    .await
    .unwrap()
    .expect("python3");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README's Python example failed:\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It prints the answer with its model, then the streamed answer: two recorded answers.
    let football = common::dataset("gsm8k-dev.jsonl")
        .into_iter()
        .find(|r| {
            r["prompt"]
                .as_str()
                .unwrap()
                .starts_with("A football team played 22")
        })
        .expect("the README's Python question is recorded");
    let recorded: usize = football["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| printed.matches(c["text"].as_str().unwrap()).count())
        .sum();
    assert_eq!(recorded, 2, "{printed}");
    assert!(
        printed.contains("mixtral-8x7b-instruct") || printed.contains("gpt-4-1106-preview"),
        "{printed}"
    );
    let unknown = http
        .post(format!("{url}/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "cheap", "messages": [{"role": "user", "content": "not a recorded prompt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        502,
        "replay answers recorded prompts only, with a clear error"
    );
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0");
    assert!(data.path().join("traces.db").is_file());
}

/// `--data-dir` on the command line is relative to where it is typed, like every other
/// path a user types there; the configuration's own paths are relative to its folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_data_dir_is_relative_to_the_working_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = arbiter();
    command
        .current_dir(cwd.path())
        .args(["serve", "--data-dir", "here"]);
    let (mut child, _, url) = serve(command).await;
    let health = reqwest::get(format!("{}/healthz", url.trim_end_matches("/v1")))
        .await
        .unwrap();
    assert!(health.status().is_success());
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert!(cwd.path().join("here").join("traces.db").is_file());
}

#[test]
fn eval_reports_pipelines_and_reference_points() {
    let out = arbiter()
        .args([
            "eval",
            "--pipeline",
            "math-cascade",
            "--pipeline",
            "cheap",
            "--pipeline",
            "expensive",
            "--pipeline",
            "math-race",
            "--pipeline",
            "math-cascade-strict",
        ])
        .args([
            "--dataset",
            "data/gsm8k-dev.jsonl",
            "--limit",
            "60",
            "--json",
        ])
        .output()
        .unwrap();
    common::assert_exit_ok(&out);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["queries"], 60);
    let p = |name: &str| {
        r["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pipeline"] == name)
            .unwrap()
            .clone()
    };
    let (cascade, cheap, expensive, race) = (
        p("math-cascade"),
        p("cheap"),
        p("expensive"),
        p("math-race"),
    );
    let acc = |p: &Value| p["accuracy"].as_f64().unwrap();
    let cost = |p: &Value| p["cost_per_query_usd"].as_f64().unwrap();
    assert!(
        acc(&cascade) > acc(&cheap),
        "verification + escalation beats the cheap model"
    );
    assert!(
        cost(&cascade) < cost(&expensive) / 2.0,
        "at well under half the expensive cost"
    );
    assert!(cascade["verifier"]["precision"].as_f64().unwrap() > 0.5);
    // The strict verifier rejects everything the default one does, and more: answers
    // that never mention a number from the question.
    let strict = p("math-cascade-strict");
    let accepted = |p: &Value| p["verifier"]["accepted"].as_u64().unwrap();
    assert!(accepted(&strict) < accepted(&cascade), "{strict:#}");
    assert!(
        strict["model_calls_per_query"].as_f64().unwrap()
            > cascade["model_calls_per_query"].as_f64().unwrap()
    );
    assert!(acc(&strict) > acc(&cheap));
    assert!(
        race["cancelled_calls"].as_u64().unwrap() > 0,
        "races cancel their losers"
    );
    assert!(
        cascade["latency_p50_ms"].as_f64().unwrap() > 0.0,
        "simulated latencies are measured"
    );
    // The dataset's own reference points agree with the single-model pipelines.
    let models = r["models"].as_array().unwrap();
    let m = |name: &str| {
        models.iter().find(|m| m["model"] == name).unwrap()["accuracy"]
            .as_f64()
            .unwrap()
    };
    assert!((m("mixtral-8x7b-instruct") - acc(&cheap)).abs() < 1e-9);
    assert!((m("gpt-4-1106-preview") - acc(&expensive)).abs() < 1e-9);
    assert!(r["oracle"]["accuracy"].as_f64().unwrap() >= acc(&expensive));
}

/// Pipelines that judge the same candidates with the same verifier share one
/// verification each, also when every candidate is judged ahead (`--pre-verify`), and
/// the report is what running every verification gives.
#[test]
fn eval_reuses_verdicts_across_pipelines_without_changing_the_report() {
    let run = |extra: &[&str]| {
        let out = arbiter()
            .args([
                "eval",
                "--pipeline",
                "math-cascade",
                "--pipeline",
                "math-route",
            ])
            .args([
                "--dataset",
                "data/gsm8k-dev.jsonl",
                "--limit",
                "40",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        common::assert_exit_ok(&out);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let shared = run(&[]);
    let fresh = run(&["--fresh-verdicts"]);
    let ahead = run(&["--pre-verify"]);
    let v = &shared["verifications"];
    assert!(v["reused"].as_u64().unwrap() > 0, "{v}");
    assert!(v["run"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["ahead"], 0, "{v}");
    assert!(fresh.get("verifications").is_none());
    // Judged ahead: every candidate of the 40 questions (two models each) once, and
    // nothing left to run during the pipelines.
    let v = &ahead["verifications"];
    assert_eq!(v["ahead"], 80, "{v}");
    assert_eq!(v["run"], 0, "{v}");
    for other in [&fresh, &ahead] {
        for (a, b) in shared["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .zip(other["pipelines"].as_array().unwrap())
        {
            for field in [
                "pipeline",
                "accuracy",
                "cost_per_query_usd",
                "outcomes",
                "verifier",
            ] {
                assert_eq!(a[field], b[field], "{field}");
            }
        }
    }
}

#[test]
fn eval_refuses_an_empty_selection_by_name() {
    let out = arbiter()
        .args([
            "eval",
            "--pipeline",
            "cheap",
            "--dataset",
            "data/gsm8k-dev.jsonl",
        ])
        .args(["--limit", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--limit"), "{err}");
}

/// The text elements of an SVG figure (plotters writes each on a line of its own).
fn svg_texts(path: &std::path::Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", path.display());
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            body.trim()
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

fn assert_has_texts(path: &std::path::Path, expected: &[&str]) {
    let texts = svg_texts(path);
    for e in expected {
        assert!(
            texts.iter().any(|t| t == e),
            "{}: no text {e:?} among {texts:#?}",
            path.display()
        );
    }
}

/// A PNG figure decodes, has the figure's size and is not blank.
fn assert_png(path: &std::path::Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 640), "{}", path.display());
    let pixels = &buf[..info.buffer_size()];
    let stride = info.color_type.samples();
    let white = vec![255u8; stride];
    let inked = pixels
        .chunks(stride)
        .filter(|p| *p != white.as_slice())
        .count();
    // Axes, grid, text and series: well over 2% of the pixels, well under all of them.
    let total = (info.width * info.height) as usize;
    assert!(
        inked > total / 50 && inked < total * 9 / 10,
        "{}: {inked} of {total} pixels drawn",
        path.display()
    );
}

#[test]
fn eval_plots_every_pipeline_model_and_reference_point() {
    let dir = tempfile::tempdir().unwrap();
    let plots = dir.path().join("figures");
    let pipelines = ["math-cascade", "cheap", "expensive", "math-race"];
    let out = arbiter()
        .arg("eval")
        .args(pipelines.iter().flat_map(|p| ["--pipeline", p]))
        .args([
            "--dataset",
            "data/gsm8k-dev.jsonl",
            "--limit",
            "40",
            "--json",
        ])
        .arg("--plot")
        .arg(&plots)
        .output()
        .unwrap();
    common::assert_exit_ok(&out);
    // stdout is the JSON document alone, and a non-terminal stderr stays free of progress.
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("eval math-cascade:"), "{err}");

    // The curves the figures draw are in the JSON.
    let p = |name: &str| {
        r["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pipeline"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(p("math-race")["strategy"], "race");
    assert_eq!(p("math-cascade")["strategy"], "cascade");
    let cascade_k = p("math-cascade")["success_at_k"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(cascade_k.len(), 2, "a cascade draws one or two samples");
    assert!(cascade_k[1]["success"].as_f64() >= cascade_k[0]["success"].as_f64());
    assert!(
        p("math-cascade")["accuracy"].as_f64() <= cascade_k[1]["success"].as_f64(),
        "its top-1 is no better than a perfect pick among its samples"
    );
    let cdf = p("expensive")["latency_cdf"].as_array().unwrap().clone();
    assert_eq!(cdf.len(), 21);
    assert_eq!(cdf[10]["ms"], p("expensive")["latency_p50_ms"]);
    let frontier: Vec<&str> = r["frontier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pipeline"].as_str().unwrap())
        .collect();
    assert_eq!(frontier.first(), Some(&"cheap"), "the cheapest is on it");
    for name in pipelines {
        assert_eq!(p(name)["on_frontier"], frontier.contains(&name), "{name}");
    }
    let models = ["mixtral-8x7b-instruct", "gpt-4-1106-preview"];
    for m in r["models"].as_array().unwrap() {
        assert_eq!(m["success_at_k_curve"].as_array().unwrap().len(), 1, "{m}");
    }

    let svg = |name: &str| plots.join(format!("{name}.svg"));
    let alone: Vec<String> = models.iter().map(|m| format!("{m} alone")).collect();
    let mut cost = vec![
        "Accuracy against cost per query (gsm8k-dev.jsonl)",
        "cost per query (USD)",
        "accuracy",
        "Pareto frontier of the pipelines",
        "oracle routing (labels)",
    ];
    cost.extend(pipelines);
    cost.extend(alone.iter().map(String::as_str));
    assert_has_texts(&svg("accuracy-cost"), &cost);

    let curves: Vec<String> = pipelines
        .iter()
        .flat_map(|p| {
            [
                format!("{p}: Success@K of its samples"),
                format!("{p}: selected top-1"),
            ]
        })
        .chain(
            models
                .iter()
                .map(|m| format!("{m} (dataset, unbiased estimate)")),
        )
        .collect();
    let mut k = vec![
        "Success@K (gsm8k-dev.jsonl)",
        "K (samples per query)",
        "Success@K (share of queries with a correct answer among K)",
    ];
    k.extend(curves.iter().map(String::as_str));
    assert_has_texts(&svg("success-at-k"), &k);

    let texts = svg_texts(&svg("latency"));
    assert_has_texts(
        &svg("latency"),
        &[
            "Latency to answer, simulated (gsm8k-dev.jsonl)",
            "latency (ms)",
            "share of queries answered within",
            "p50 of each pipeline",
            "p95 of each pipeline",
        ],
    );
    for (name, strategy) in [
        ("math-race", "race"),
        ("math-cascade", "cascade"),
        ("cheap", "single"),
        ("expensive", "single"),
    ] {
        let pl = p(name);
        let entry = format!(
            "{name} ({strategy}): p50 {:.0} ms, p95 {:.0} ms",
            pl["latency_p50_ms"].as_f64().unwrap(),
            pl["latency_p95_ms"].as_f64().unwrap()
        );
        assert!(texts.contains(&entry), "no {entry:?} in {texts:#?}");
    }

    for name in ["accuracy-cost", "success-at-k", "latency"] {
        assert_png(&plots.join(format!("{name}.png")));
    }
}

/// HumanEval's 100 samples a task give Success@K up to K = 100; without `--json` on a
/// non-terminal, progress comes as plain lines and the figures are listed.
#[test]
fn eval_plots_success_at_k_up_to_the_samples_the_data_has() {
    let dir = tempfile::tempdir().unwrap();
    let out = arbiter()
        .args(["eval", "--pipeline", "codegen-16b"])
        .args(["--dataset", "data/humaneval-dev.jsonl", "--limit", "5"])
        .arg("--plot")
        .arg(dir.path())
        .output()
        .unwrap();
    common::assert_exit_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let done: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("eval codegen-16b: "))
        .collect();
    assert!(
        done.last()
            .is_some_and(|l| l.contains("5/5 (100%)") && l.contains("queries/s")),
        "{err}"
    );
    let listed = err.lines().filter(|l| l.starts_with("wrote ")).count();
    assert_eq!(listed, 6, "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("wrote "),
        "the table alone on stdout"
    );
    let svg = dir.path().join("success-at-k.svg");
    assert_has_texts(
        &svg,
        &[
            "Success@K (humaneval-dev.jsonl)",
            "codegen-16b (dataset, unbiased estimate)",
            "codegen-16b: selected top-1",
            "100",
        ],
    );
    assert_png(&dir.path().join("success-at-k.png"));
}
