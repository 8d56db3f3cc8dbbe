//! The statistics the console shows, over HTTP against a real `arbiter serve` child, on
//! SQLite and on PostgreSQL: the chosen attempt in a trace (one answer, and each of
//! `n` = 2), per-pipeline outcome mix and percentiles, per-model figures with cost,
//! per-plugin calls and errors, shared pipelines' trees in `/v1/models`, refused
//! windows, the operator's view of a tenant, and that tenant b never sees a's.

use arbiter::server::auth::hash_key;
use serde_json::{json, Value};

use crate::common::gateway::{code, Client, OPERATOR};
use crate::common::{mock_upstream, postgres_database, reference_plugin};

const KEY_A: &str = "sk-stats-tenant-a";
const KEY_B: &str = "sk-stats-tenant-b";

fn config(data: &std::path::Path, mock: &str, store: Option<&str>) -> String {
    let store = store
        .map(|url| format!("[store]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[server]
data_dir = "{data}"

{store}
[providers.mock]
kind = "openai"
base_url = "{mock}"

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
upstream = "right@50"
input_price = 1.0
output_price = 2.0

[models.slow]
provider = "mock"
upstream = "right@3000"
input_price = 1.0
output_price = 2.0

[plugins.math]
path = "{math}"

[tenants.a]
api_keys = ["{ka}"]
policy = {{ models = ["*"] }}

[tenants.b]
api_keys = ["{kb}"]

[pipelines.race]
tenants = ["a"]
description = "the fast branch wins"
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

[pipelines.b-private]
tenants = ["b"]
type = "single"
model = "right"
"#,
        data = data.display(),
        math = reference_plugin("gsm8k-verifier").display(),
        ka = hash_key(KEY_A),
        kb = hash_key(KEY_B),
    )
}

async fn chat(c: &Client, key: &str, body: Value) -> Value {
    let (status, _, reply) = c
        .call(
            reqwest::Method::POST,
            key,
            "/v1/chat/completions",
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

async fn seed(c: &Client, key: &str, model: &str) -> String {
    let reply = chat(
        c,
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "2+2?"}]}),
    )
    .await;
    reply["arbiter"]["trace_id"].as_str().unwrap().to_string()
}

async fn ok(c: &Client, key: &str, path: &str) -> Value {
    let (s, v) = c.get(key, path).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

fn find<'a>(list: &'a Value, field: &str, name: &str) -> Option<&'a Value> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == name)
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_string())
        .collect()
}

async fn statistics(store: Option<&str>) {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arbiter.toml");
    std::fs::write(
        &path,
        config(&dir.path().join("data"), &mock.base_url, store),
    )
    .unwrap();
    let (mut child, c) = Client::spawn(&path).await;

    let race = seed(&c, KEY_A, "race").await;
    seed(&c, KEY_A, "race").await;
    let cascade = seed(&c, KEY_A, "cascade").await;
    seed(&c, KEY_B, "b-private").await;
    let two = chat(
        &c,
        KEY_A,
        json!({"model": "right", "n": 2, "messages": [{"role": "user", "content": "2+2?"}]}),
    )
    .await;

    // The chosen attempt: the race's winner, the cascade's second step, and each of two
    // choices.
    let trace = ok(&c, KEY_A, &format!("/v1/traces/{race}")).await;
    let chosen = trace["answer_attempt"].as_u64().expect("answer_attempt");
    let winner = trace["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["seq"] == chosen)
        .unwrap();
    assert_eq!(
        (winner["model"].as_str(), winner["outcome"].as_str()),
        (Some("fast"), Some("unverified")),
        "{trace}"
    );
    assert!(
        trace.get("answer_attempts").is_none(),
        "one answer: {trace}"
    );
    let trace = ok(&c, KEY_A, &format!("/v1/traces/{cascade}")).await;
    let chosen = &trace["attempts"][trace["answer_attempt"].as_u64().unwrap() as usize];
    assert_eq!(
        (chosen["model"].as_str(), chosen["outcome"].as_str()),
        (Some("right"), Some("accepted")),
        "{trace}"
    );
    let id = two["arbiter"]["trace_id"].as_str().unwrap();
    let trace = ok(&c, KEY_A, &format!("/v1/traces/{id}")).await;
    let choices = trace["answer_attempts"].as_array().expect("n = 2");
    assert_eq!(choices.len(), 2, "{trace}");
    assert_eq!(choices[0], trace["answer_attempt"]);

    // Pipelines: outcome mix and percentiles, a's alone.
    let stats = ok(&c, KEY_A, "/v1/stats/pipelines").await;
    assert_eq!(stats["window"]["complete"], true, "{stats}");
    assert_eq!(stats["window"]["requests"], 4, "{stats}");
    let r = find(&stats, "pipeline", "race").expect("race");
    assert_eq!(
        (r["requests"].as_u64(), r["outcomes"]["unverified"].as_u64()),
        (Some(2), Some(2))
    );
    let p = &r["latency_ms"];
    assert!(p["p50"].as_f64().unwrap() >= 50.0, "{r}");
    assert!(p["p50"].as_f64() <= p["p95"].as_f64() && p["p95"].as_f64() <= p["p99"].as_f64());
    assert!(r["cost_usd"].as_f64().unwrap() > 0.0);
    let k = find(&stats, "pipeline", "cascade").expect("cascade");
    assert_eq!(k["outcomes"], json!({"accepted": 1}));
    assert!(
        find(&stats, "pipeline", "right").is_some(),
        "a raw model called directly"
    );
    assert!(find(&stats, "pipeline", "b-private").is_none(), "{stats}");
    let theirs = ok(&c, KEY_B, "/v1/stats/pipelines").await;
    assert_eq!(names(&theirs, "pipeline"), ["b-private"], "{theirs}");
    // A window before any of it holds nothing.
    let empty = ok(&c, KEY_A, "/v1/stats/pipelines?since=0&until=1000").await;
    assert_eq!(
        (
            empty["window"]["requests"].as_u64(),
            empty["data"].as_array().unwrap().len()
        ),
        (Some(0), 0)
    );

    // Models: the routers' figures with calls and cost; b's only its own.
    let models = ok(&c, KEY_A, "/v1/stats/models").await;
    let wrong = find(&models, "model", "wrong").expect("wrong");
    assert_eq!(
        (wrong["judged"].as_u64(), wrong["success_rate"].as_f64()),
        (Some(1), Some(0.0)),
        "{wrong}"
    );
    assert!(
        wrong["cost_usd"].as_f64().unwrap() > 0.0 && wrong["calls"] == 1,
        "{wrong}"
    );
    let fast = find(&models, "model", "fast").expect("fast");
    assert!(fast["latency_p50_ms"].as_f64().unwrap() >= 50.0, "{fast}");
    assert!(
        fast.get("success_rate").is_none(),
        "unverified answers judge nothing: {fast}"
    );
    let theirs = ok(&c, KEY_B, "/v1/stats/models").await;
    assert_eq!(names(&theirs, "model"), ["right"], "{theirs}");

    // Plugins: the verifier's two verdicts in the cascade.
    let plugins = ok(&c, KEY_A, "/v1/stats/plugins").await;
    let math = find(&plugins, "plugin", "math").expect("math");
    assert_eq!(
        (
            math["calls"].as_u64(),
            math["errors"].as_u64(),
            math["kind"].as_str()
        ),
        (Some(2), Some(0), Some("verifier")),
        "{math}"
    );
    assert!(math["call_ms"]["p50"].as_f64().unwrap() > 0.0, "{math}");
    let theirs = ok(&c, KEY_B, "/v1/stats/plugins").await;
    assert_eq!(theirs["data"], json!([]), "{theirs}");

    // Shared pipelines' trees, in what the key may call.
    let listed = ok(&c, KEY_A, "/v1/models").await;
    let tree = &find(&listed, "id", "cascade").unwrap()["arbiter"]["definition"];
    assert_eq!(tree["type"], "cascade", "{tree}");
    assert_eq!(tree["steps"][0]["verify"][0]["plugin"], "math", "{tree}");
    assert!(
        tree.get("tenants").is_none() && !tree.to_string().contains("config"),
        "{tree}"
    );
    let theirs = ok(&c, KEY_B, "/v1/models").await;
    assert!(!theirs.to_string().contains("cascade"), "{theirs}");

    // Windows and parameters are checked by name.
    for bad in [
        "since=soon",
        "since=5&until=5",
        "since=-1",
        "since=0&until=2678400001",
        "days=3",
    ] {
        for route in ["pipelines", "models", "plugins"] {
            let (s, e) = c.get(KEY_A, &format!("/v1/stats/{route}?{bad}")).await;
            assert_eq!(
                (s.as_u16(), code(&e)),
                (400, "invalid_value"),
                "{route}?{bad}: {e}"
            );
        }
    }

    // The operator reads a tenant's; a tenant key cannot.
    let theirs = ok(&c, OPERATOR, "/admin/v1/tenants/b/stats/pipelines").await;
    assert_eq!(names(&theirs, "pipeline"), ["b-private"], "{theirs}");
    let mine = ok(&c, OPERATOR, "/admin/v1/tenants/a/stats/plugins").await;
    assert!(find(&mine, "plugin", "math").is_some(), "{mine}");
    let theirs = ok(&c, OPERATOR, "/admin/v1/tenants/b/stats/models").await;
    assert_eq!(names(&theirs, "model"), ["right"], "{theirs}");
    let theirs = ok(&c, OPERATOR, "/admin/v1/tenants/b/models").await;
    assert_eq!(names(&theirs, "id"), ["b-private"], "{theirs}");
    assert_eq!(
        find(&theirs, "id", "b-private").unwrap()["arbiter"]["definition"]["model"],
        "right"
    );
    let (s, e) = c.get(OPERATOR, "/admin/v1/tenants/nobody/models").await;
    assert_eq!((s.as_u16(), code(&e)), (404, "tenant_not_found"));
    for route in ["stats/pipelines", "stats/models", "stats/plugins", "models"] {
        let (s, _) = c.get(KEY_A, &format!("/admin/v1/tenants/b/{route}")).await;
        assert_eq!(s, 403, "{route}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_on_sqlite() {
    statistics(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_on_postgres() {
    let Some(url) = postgres_database().await else {
        return;
    };
    statistics(Some(&url)).await;
}
