//! The web console in headless Chromium against a real `arbiter serve` child process:
//! seeded traffic of two tenants (a race with a slow loser, a cascade that escalates),
//! then `console/tests/browser.mjs` signs in as the operator (who picks a tenant) and as
//! a tenant, lists and filters traces, checks the race's timeline shows the cancelled
//! loser and marks the winner's answer as returned, opens the Pipelines page (trees,
//! outcome mix, percentiles) and the Models page (with plugin calls), checks that the
//! other tenant's data is not shown, sends feedback; the operator creates a tenant,
//! edits its policy, makes it a key that signs in elsewhere and is then revoked, reloads
//! the configuration and deletes the tenant; that tenant uploads and deletes a plugin.
//! It fails on console errors. Screenshots go to `target/console-screenshots/`.
//!
//! Needs Debian's `chromium` (or `CHROMIUM=/path`) and `npm ci` in `console/`; `.ci/run`
//! installs both. Without Chromium the test says so and passes.

use std::path::PathBuf;

use arbiter::server::auth::hash_key;
use serde_json::{json, Value};

use crate::common::gateway::{code, Client, OPERATOR};
use crate::common::{mock_upstream, reference_plugin, repo_root};

const KEY_A: &str = "sk-console-tenant-a";
const KEY_B: &str = "sk-console-tenant-b";

/// Chromium's path (`CHROMIUM`, else Debian's), and whether it is there.
fn chromium() -> (PathBuf, bool) {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let found = path.exists();
    (path, found)
}

/// A chat request through `pipeline` with `tags`; its trace id.
async fn seed(c: &Client, key: &str, pipeline: &str, tags: &[&str]) -> String {
    let body = json!({
        "model": pipeline,
        "messages": [{"role": "user", "content": "2+2?"}],
        "arbiter": {"tags": tags},
    });
    let (status, _, reply) = c
        .call(
            reqwest::Method::POST,
            key,
            "/v1/chat/completions",
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{pipeline}: {reply}");
    reply["arbiter"]["trace_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_lists_traces_and_shows_a_race_timeline() {
    let (chromium, found) = chromium();
    if !found {
        eprintln!(
            "SKIPPED: no Chromium at {} (apt-get install chromium, or set CHROMIUM); the console's browser test did not run",
            chromium.display()
        );
        return;
    }
    let console = repo_root().join("console");
    assert!(
        console.join("node_modules/playwright-core").exists(),
        "run `npm ci` in console/ first (.ci/run does)"
    );
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("arbiter.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
data_dir = "{data}"

[providers.mock]
kind = "openai"
base_url = "{url}"

[models.right]
provider = "mock"
input_price = 1.0
output_price = 2.0

[models.wrong]
provider = "mock"
input_price = 0.1
output_price = 0.2

[models.fast]
provider = "mock"
upstream = "right@100"
input_price = 1.0
output_price = 2.0

# Slow enough to lose the race whatever the machine's load.
[models.slow]
provider = "mock"
upstream = "right@3000"
input_price = 1.0
output_price = 2.0

[plugins.math]
path = "{math}"

[tenants.a]
api_keys = ["{ka}"]
policy = {{ models = ["*"], daily_spend_usd = 5.0 }}

[tenants.b]
api_keys = ["{kb}"]

[pipelines.race]
tenants = ["a"]
type = "race"
branches = [
  {{ type = "single", model = "slow" }},
  {{ type = "single", model = "fast" }},
]

[pipelines.cascade]
tenants = ["a"]
type = "cascade"
steps = [
  {{ type = "single", model = "wrong", verify = [{{ plugin = "math" }}] }},
  {{ type = "single", model = "right", verify = [{{ plugin = "math" }}] }},
]

[pipelines.plain]
tenants = ["a"]
type = "single"
model = "right"

[pipelines.b-private]
tenants = ["b"]
type = "single"
model = "right"
"#,
            data = dir.path().join("data").display(),
            url = mock.base_url,
            math = reference_plugin("gsm8k-verifier").display(),
            ka = hash_key(KEY_A),
            kb = hash_key(KEY_B),
        ),
    )
    .unwrap();
    let (mut child, c) = Client::spawn(&config).await;

    // The console is served with its content types and a strict policy.
    let page = c
        .http
        .get(format!("{}/console", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let script = c
        .http
        .get(format!("{}/console/app.js", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    // Tenant a's own pipeline, for the catalog page's tree.
    let mine = json!({
        "description": "a's own: the cheap model, then a race",
        "type": "cascade",
        "steps": [
            {"type": "single", "model": "wrong"},
            {"type": "race", "branches": [
                {"type": "single", "model": "fast"},
                {"type": "single", "model": "slow"},
            ]},
        ],
    });
    let (s, p) = c.put(KEY_A, "/v1/pipelines/mine", mine).await;
    assert_eq!(s, 201, "{p}");
    let race = seed(&c, KEY_A, "race", &["demo", "race"]).await;
    let cascade = seed(&c, KEY_A, "cascade", &["demo"]).await;
    seed(&c, KEY_A, "plain", &[]).await;
    let other = seed(&c, KEY_B, "b-private", &["demo"]).await;
    // The API the console reads: the race has its cancelled loser.
    let (_, trace) = c.get(KEY_A, &format!("/v1/traces/{race}")).await;
    let outcomes: Vec<(&str, &str)> = trace["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["model"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert!(outcomes.contains(&("slow", "cancelled")), "{outcomes:?}");
    let (_, listed) = c.get(KEY_B, "/v1/traces?tag=demo").await;
    let ids: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, [&json!(other)], "tenant b sees only its own: {listed}");
    // Paging over HTTP: every trace once, newest first, then no cursor; bad parameters
    // are refused by name.
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let (s, page) = c.get(KEY_A, &format!("/v1/traces?limit=2{cursor}")).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(
        seen[2],
        json!(race),
        "the race came first, so it is listed last"
    );
    for bad in ["limit=0", "limit=201", "outcome=great", "cursor=nonsense"] {
        let (s, e) = c.get(KEY_A, &format!("/v1/traces?{bad}")).await;
        assert_eq!((s.as_u16(), code(&e)), (400, "invalid_value"), "{bad}: {e}");
    }
    // The operator reads any tenant's, through its own routes; a tenant key cannot.
    let (_, listed) = c.get(OPERATOR, "/admin/v1/tenants/b/traces").await;
    assert_eq!(listed["data"][0]["id"], json!(other), "{listed}");
    let (s, _) = c
        .get(OPERATOR, &format!("/admin/v1/tenants/a/traces/{race}"))
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .get(OPERATOR, &format!("/admin/v1/tenants/b/traces/{race}"))
        .await;
    assert_eq!(s, 404, "a's trace is not b's");
    let (s, _) = c.get(KEY_A, "/admin/v1/tenants/b/traces").await;
    assert_eq!(s, 403);

    let shots = repo_root().join("target").join("console-screenshots");
    let out = tokio::process::Command::new("node")
        .arg(console.join("tests").join("browser.mjs"))
        .current_dir(&console)
        .env("CHROMIUM", &chromium)
        .env("ARBITER_URL", &c.url)
        .env("ARBITER_KEY_A", KEY_A)
        .env("ARBITER_OPERATOR_KEY", OPERATOR)
        .env("ARBITER_RACE_TRACE", &race)
        .env("ARBITER_CASCADE_TRACE", &cascade)
        .env("ARBITER_OTHER_TRACE", &other)
        .env("ARBITER_OTHER_PIPELINE", "b-private")
        .env("ARBITER_SHOTS", &shots)
        .env("ARBITER_PLUGIN", reference_plugin("gsm8k-verifier"))
        .env("ARBITER_CONFIG", &config)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running node");
    // What the operator's pages did went through the API.
    let (gone, _) = c.get(OPERATOR, "/admin/v1/tenants/ops-demo").await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        out.status.success(),
        "the browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        gone, 404,
        "the operator's pages deleted the tenant they created"
    );
    println!("screenshots: {}", shots.display());
}

/// The console the binary embeds (`host/assets/console/`) is what its sources build to:
/// an edit to `console/src` without `npm run build` fails here.
#[test]
fn the_embedded_console_is_a_fresh_build() {
    let console = repo_root().join("console");
    assert!(
        console.join("node_modules/esbuild").exists(),
        "run `npm ci` in console/ first (.ci/run does)"
    );
    let out = std::process::Command::new("node")
        .args(["build.mjs", "--check"])
        .current_dir(&console)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
