//! `arbiter plugin push` and `arbiter pipeline apply|list|delete` against a real
//! `arbiter serve` child, with a tenant key from the environment: a component file and a
//! project folder pushed, the same bytes again, a pipeline from TOML created, replaced,
//! run and deleted, and refusals reported with the server's error code.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common::gateway::{Client, OPERATOR};
use crate::common::{assert_exit_ok, guest, mock_upstream, repo_root, wasm_target_dir};

fn write_config(path: &Path, data: &Path, mock: &str) {
    std::fs::write(
        path,
        format!(
            r#"
[server]
data_dir = "{data}"

[providers.mock]
kind = "openai"
base_url = "{mock}"

[models.right]
provider = "mock"
input_price = 1.0
output_price = 1.0
"#,
            data = data.display(),
        ),
    )
    .unwrap();
}

fn stdout_json(out: &Output) -> Value {
    assert_exit_ok(out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stdout(out: &Output) -> String {
    assert_exit_ok(out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `{"error": {...}}` a failed `--json` command prints on stderr.
fn refusal(out: &Output) -> Value {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pushes_plugins_and_applies_pipelines() {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("arbiter.toml"), dir.path().join("data"));
    write_config(&config, &data, &mock.base_url);
    let (mut child, c) = Client::spawn(&config).await;
    let (s, t) = c
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "acme", "policy": {"models": ["right"]}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let key = c.new_key("acme", json!({})).await;
    let trivial = guest("trivial");
    let (url, k) = (c.url.clone(), key.clone());
    let cli = move |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args(args)
            .env("ARBITER_URL", &url)
            .env("ARBITER_API_KEY", &k)
            // The project folder's build reuses the tests' wasm builds (and the SDK's).
            .env("CARGO_TARGET_DIR", wasm_target_dir())
            .output()
            .unwrap()
    };
    let trivial_arg = trivial.to_str().unwrap();

    // A component file: a new version, then the same bytes: the same version, unchanged.
    let v1 = stdout_json(&cli(&[
        "plugin",
        "push",
        trivial_arg,
        "--name",
        "checker",
        "--json",
    ]));
    let version = v1["version"].as_str().unwrap().to_string();
    assert!(version.starts_with("sha256:"), "{v1}");
    assert_eq!(
        (v1["name"].as_str(), v1["world"].as_str()),
        (Some("checker"), Some("verifier"))
    );
    assert_eq!(
        v1["size_bytes"],
        std::fs::metadata(&trivial).unwrap().len(),
        "{v1}"
    );
    let again = stdout(&cli(&["plugin", "push", trivial_arg, "--name", "checker"]));
    assert!(
        again.starts_with(&format!("checker {version} verifier "))
            && again.trim_end().ends_with("(unchanged)"),
        "{again}"
    );
    assert_eq!(again.lines().count(), 1, "{again}");

    // A project folder, built first; the name is the component's file stem.
    let project = repo_root().join("plugins/gsm8k-verifier");
    let pushed = stdout(&cli(&["plugin", "push", project.to_str().unwrap()]));
    assert!(
        pushed.starts_with("gsm8k_verifier sha256:") && pushed.trim_end().ends_with("(new)"),
        "{pushed}"
    );
    let (s, list) = c.get(&key, "/v1/plugins").await;
    assert_eq!(s, 200, "{list}");
    let mut names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["checker", "gsm8k_verifier"], "{list}");
    let (_, shown) = c.get(&key, "/v1/plugins/checker").await;
    assert_eq!(shown["latest"], version.as_str(), "{shown}");

    // A pipeline from TOML: created, then replaced, and it runs the pushed plugin.
    let checked = dir.path().join("checked.toml");
    std::fs::write(
        &checked,
        "type = \"single\"\nmodel = \"right\"\nverify = [{ plugin = \"checker\" }]\n",
    )
    .unwrap();
    let checked_arg = checked.to_str().unwrap();
    assert_eq!(
        stdout(&cli(&["pipeline", "apply", checked_arg])),
        "pipeline checked created\n"
    );
    assert_eq!(
        stdout(&cli(&["pipeline", "apply", checked_arg])),
        "pipeline checked replaced\n"
    );
    let (s, _, reply) = c.chat(&key, "checked").await;
    assert_eq!(s, 200, "{reply}");
    assert_eq!(
        reply["arbiter"]["verdicts"][0]["plugin"],
        format!("checker@{version}"),
        "{reply}"
    );
    // A configuration excerpt names its pipeline; JSON as well.
    let wrapped = dir.path().join("excerpt.toml");
    std::fs::write(
        &wrapped,
        "[pipelines.graded]\ntype = \"single\"\nmodel = \"right\"\nverify = [{ plugin = \"gsm8k_verifier\" }]\n",
    )
    .unwrap();
    let graded = stdout_json(&cli(&[
        "pipeline",
        "apply",
        wrapped.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(graded["name"], "graded", "{graded}");
    assert_eq!(
        graded["definition"]["verify"][0]["plugin"],
        "gsm8k_verifier"
    );
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, r#"{"type": "single", "model": "right"}"#).unwrap();
    let applied = stdout_json(&cli(&[
        "pipeline",
        "apply",
        plain.to_str().unwrap(),
        "--name",
        "direct",
        "--json",
    ]));
    assert_eq!(applied["name"], "direct", "{applied}");
    let listed = stdout(&cli(&["pipeline", "list"]));
    assert_eq!(listed.lines().count(), 3, "{listed}");

    // Refusals: the server's code, as JSON on stderr with --json, else a line.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"hello, world: not a component").unwrap();
    let e = refusal(&cli(&["plugin", "push", junk.to_str().unwrap(), "--json"]));
    assert_eq!(e["error"]["code"], "not_a_component", "{e}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "single", "model": "secret"}"#).unwrap();
    let e = refusal(&cli(&[
        "pipeline",
        "apply",
        bad.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(e["error"]["code"], "invalid_pipeline", "{e}");
    let out = cli(&["pipeline", "delete", "nope"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.starts_with("error: 404") && text.contains("pipeline_not_found"),
        "{text}"
    );

    // Deleted: nothing left to list.
    for name in ["checked", "graded", "direct"] {
        assert_eq!(
            stdout(&cli(&["pipeline", "delete", name])),
            format!("pipeline {name} deleted\n")
        );
    }
    let left = stdout_json(&cli(&["pipeline", "list", "--json"]));
    assert_eq!(left["data"], json!([]), "{left}");
    let (s, _, _) = c.chat(&key, "checked").await;
    assert_eq!(s, 404);
    child.kill().unwrap();
    child.wait().unwrap();
}
