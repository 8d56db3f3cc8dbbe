//! End-to-end tests of the gateway against an in-process mock upstream: every strategy,
//! cancellation seen by the upstream, hedging, retries, timeouts, broken upstreams,
//! budgets, decomposition, restart durability, tenant isolation, and the official
//! `openai` Python client.

use crate::common;
use crate::common::mock_upstream;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbiter::app::{App, AppOptions};
use arbiter::config::GatewayConfig;
use arbiter::providers::Provider;
use arbiter::server::auth::hash_key;
use arbiter::server::serve;
use common::reference_plugin;
use serde_json::{json, Value};

pub(crate) const KEY_A: &str = "sk-test-tenant-a";
pub(crate) const KEY_B: &str = "sk-test-tenant-b";
pub(crate) const KEY_C: &str = "sk-test-tenant-c";

pub(crate) struct Gateway {
    pub(crate) url: String,
    pub(crate) mock: mock_upstream::MockUpstream,
    pub(crate) http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _data: Option<tempfile::TempDir>,
}

fn config_text(mock_url: &str, data_dir: &Path, pipelines: &str) -> String {
    let models = [
        "right",
        "wrong",
        "echo",
        "flaky429",
        "flaky503",
        "bad400",
        "down",
        "leak",
        "malformed",
        "hang",
        "broken-stream",
        "stall-stream",
        "right@300",
        "right@800",
        "right@2000",
        "wrong@100",
        "right@150",
        "params",
        "cut",
        "firehose",
        "tools",
        "tools-bad",
        "embed",
        "embed-huge",
        "lone",
        "slip",
    ];
    let mut models_toml = String::new();
    for m in models {
        // `params` is the cheapest, so a judge plugin's own calls go to it where its
        // pipeline allows it.
        let price = match m {
            "params" => 0.01,
            m if m.starts_with("wrong") => 0.1,
            _ => 1.0,
        };
        models_toml.push_str(&format!(
            "[models.\"{m}\"]\nprovider = \"mock\"\ninput_price = {price}\noutput_price = {price}\nexpected_latency_ms = 300\n"
        ));
    }
    format!(
        r#"
[server]
data_dir = "{data}"
shutdown_grace_ms = 5000
max_body_bytes = 1048576

[providers.mock]
kind = "openai"
base_url = "{mock_url}"
timeout_ms = 10000
stream_idle_timeout_ms = 500
retry = {{ max_retries = 2, base_delay_ms = 1, max_delay_ms = 20 }}

# An upstream that takes fields the gateway does not know, and OpenAI's newer name for
# the token limit.
[providers.open]
kind = "openai"
base_url = "{mock_url}"
unknown_fields = "forward"
token_limit_param = "max_completion_tokens"

[models.params-open]
provider = "open"
upstream = "params"
input_price = 0.01
output_price = 0.01

[models.embed-open]
provider = "open"
upstream = "embed"
input_price = 1.0
output_price = 0.0

# Anthropic's Messages API, served by the mock at its root.
[providers.claude]
kind = "anthropic"
base_url = "{mock_root}"
api_key_env = ""

[models.claude-echo]
provider = "claude"
upstream = "echo-request"
input_price = 0.01
output_price = 0.01

[models.claude-tools]
provider = "claude"
upstream = "tools"
input_price = 0.01
output_price = 0.01

{models_toml}

[plugins.math]
path = "{math}"
warm = true

[plugins.router]
path = "{router}"
config = {{ cheap = "wrong", expensive = "right", threshold = 0.9 }}

[plugins.splitter]
path = "{splitter}"

[plugins.judge]
path = "{judge}"
grants = ["model"]

[plugins.tool-args]
path = "{tool_args}"

[plugins.old-contract]
path = "{old_contract}"

[plugins.learner]
path = "{learner}"
grants = ["stats"]
config = {{ min-attempts = 3, explore-every = 0 }}

[tenants.a]
api_keys = ["{ka}"]
policy = {{ models = ["*"] }}

[tenants.b]
api_keys = ["{kb}"]
policy = {{ models = ["*"] }}

[tenants.c]
api_keys = ["{kc}"]
policy = {{ models = ["*"] }}

[pipelines.only-b]
tenants = ["b"]
type = "single"
model = "right"

{pipelines}
"#,
        data = data_dir.display(),
        mock_root = mock_url.trim_end_matches("/v1"),
        math = reference_plugin("gsm8k-verifier").display(),
        router = reference_plugin("prompt-router").display(),
        splitter = reference_plugin("numbered-decomposer").display(),
        judge = common::guest("wants-model").display(),
        ka = hash_key(KEY_A),
        kb = hash_key(KEY_B),
        kc = hash_key(KEY_C),
        learner = reference_plugin("outcome-router").display(),
        tool_args = reference_plugin("tool-args-verifier").display(),
        old_contract = common::guest("contract-0-1").display(),
    )
}

const PIPELINES: &str = r#"
# Not a pass-through: its answer (tool calls) is streamed whole once chosen.
[pipelines.tools-cascade]
tenants = ["a"]
type = "cascade"
steps = [{ type = "single", model = "tools" }]

# Two of three samples call tools with wrong-typed arguments; the tool-argument verifier
# (contract 0.2.0) and a 0.1.0 verifier judge every sample side by side.
[pipelines.tools-best-of]
tenants = ["a"]
type = "best_of"
models = ["tools-bad", "tools", "tools-bad"]
k = 3
mode = "parallel"
verify = [{ plugin = "tool-args" }, { plugin = "old-contract" }]

[pipelines.verified]
tenants = ["a"]
type = "single"
model = "right"
verify = [{ plugin = "math" }]

[pipelines.cascade]
tenants = ["a"]
type = "cascade"
steps = [
  { type = "single", model = "wrong", verify = [{ plugin = "math" }] },
  { type = "single", model = "right", verify = [{ plugin = "math" }] },
]

[pipelines.cascade-strict]
tenants = ["a"]
on_budget = "error"
type = "cascade"
steps = [
  { type = "single", model = "wrong", verify = [{ plugin = "math" }] },
  { type = "single", model = "right", verify = [{ plugin = "math" }] },
]

[pipelines.judged-slow]
tenants = ["a"]
judge_models = ["params"]
type = "cascade"
steps = [
  { type = "single", model = "wrong", verify = [{ plugin = "judge" }] },
  { type = "single", model = "right@2000" },
]

[pipelines.best-of]
tenants = ["a"]
type = "best_of"
models = ["wrong", "right", "wrong"]
k = 3
verify = [{ plugin = "math" }]
select = true

# One accepted sample with an answer of its own, seven rejected ones (score 0.45 each)
# that agree: the verifier's vote (support x own score) ranks the seven first.
[pipelines.best-of-vote]
tenants = ["a"]
type = "best_of"
models = ["lone", "slip", "slip", "slip", "slip", "slip", "slip", "slip"]
k = 8
mode = "parallel"
verify = [{ plugin = "math" }]
select = true

[pipelines.best-of-slow]
tenants = ["a"]
type = "best_of"
models = ["right@300"]
k = 3
verify = [{ plugin = "math", config = { integer-answer = false } }]
mode = "auto"

[pipelines.route]
tenants = ["a"]
type = "route"
router = { plugin = "router" }
models = ["wrong", "right"]
verify = [{ plugin = "math" }]

[pipelines.race]
tenants = ["a"]
type = "race"
branches = [
  { type = "single", model = "right@2000", verify = [{ plugin = "math" }] },
  { type = "single", model = "right@150", verify = [{ plugin = "math" }] },
]

[pipelines.hedge-unneeded]
tenants = ["a"]
type = "race"
hedge_after_ms = 400
branches = [
  { type = "single", model = "right" },
  { type = "single", model = "right@300" },
]

[pipelines.hedge-needed]
tenants = ["a"]
type = "race"
hedge_after_ms = 100
branches = [
  { type = "single", model = "right@2000" },
  { type = "single", model = "right@150" },
]

[pipelines.chain]
tenants = ["a"]
type = "decompose"
decomposer = { plugin = "splitter", config = { sequential = true } }
sub = { type = "single", model = "echo" }

[pipelines.judged-params]
tenants = ["a"]
type = "cascade"
steps = [
  { type = "single", model = "params", verify = [{ plugin = "judge" }] },
  { type = "single", model = "params" },
]

[pipelines.judge-models]
tenants = ["a"]
judge_models = ["params"]
type = "single"
model = "right"
verify = [
  { plugin = "judge", config = { model = "right" } },
  { plugin = "judge", config = { model = "params" } },
  { plugin = "judge", config = { model = "echo" } },
  { plugin = "judge" },
]

[pipelines.learned]
tenants = ["a", "b"]
type = "route"
router = { plugin = "learner" }
models = ["wrong", "right"]
verify = [{ plugin = "math" }]

[pipelines.learned-open]
tenants = ["c"]
type = "route"
router = { plugin = "learner" }
models = ["wrong", "right"]

[pipelines.slow]
tenants = ["a"]
type = "single"
model = "right@300"

[pipelines.capped-deadline]
tenants = ["a"]
budget = { deadline_ms = 100 }
type = "single"
model = "right@300"

[pipelines.capped-cost]
tenants = ["a"]
budget = { max_cost_usd = 0.000001 }
type = "single"
model = "right"

[pipelines.capped-calls]
tenants = ["a"]
budget = { max_calls = 0 }
type = "single"
model = "right"

[pipelines.capped-depth]
tenants = ["a"]
budget = { max_depth = 0 }
type = "decompose"
decomposer = { plugin = "splitter" }
sub = { type = "single", model = "echo" }

[pipelines.split]
tenants = ["a"]
type = "decompose"
decomposer = { plugin = "splitter" }
sub = { type = "pipeline", name = "cascade" }

[pipelines.split-narrow]
tenants = ["a"]
type = "decompose"
decomposer = { plugin = "splitter" }
sub = { type = "single", model = "right@150" }
max_parallel = 2
max_subtasks = 6
"#;

/// What a test changes about the gateway it starts.
pub(crate) struct Options {
    pub(crate) mock: Option<mock_upstream::MockUpstream>,
    /// Changes the configuration (`config_text`) before the gateway starts.
    pub(crate) config: fn(&mut GatewayConfig),
    /// Used in place of the configured provider of the same name (`mock`).
    pub(crate) providers: HashMap<String, Arc<dyn Provider>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mock: None,
            config: |_| {},
            providers: HashMap::new(),
        }
    }
}

impl Gateway {
    pub(crate) async fn start() -> Gateway {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().to_path_buf();
        let mut g = Self::start_in(&path, None).await;
        g._data = Some(data);
        g
    }

    async fn start_in(data_dir: &Path, mock: Option<mock_upstream::MockUpstream>) -> Gateway {
        Self::start_with(
            data_dir,
            Options {
                mock,
                ..Options::default()
            },
        )
        .await
    }

    /// A gateway on a fresh data folder, as `options` change it.
    pub(crate) async fn start_changed(options: Options) -> Gateway {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().to_path_buf();
        let mut g = Self::start_with(&path, options).await;
        g._data = Some(data);
        g
    }

    async fn start_with(data_dir: &Path, options: Options) -> Gateway {
        let mock = match options.mock {
            Some(m) => m,
            None => mock_upstream::start().await,
        };
        let text = config_text(&mock.base_url, data_dir, PIPELINES);
        let mut config = GatewayConfig::parse(&text, "test", Path::new(".")).unwrap();
        (options.config)(&mut config);
        let limits = config.server.clone();
        let app = App::build(
            config,
            AppOptions {
                store: true,
                replay_dataset: None,
                compile_program: Some(env!("CARGO_BIN_EXE_arbiter").into()),
                providers: options.providers,
                reuse_verdicts: false,
            },
        )
        .await
        .unwrap();
        let gateway = app.gateway(None).await.unwrap();
        assert_eq!(gateway.generated_key, None, "the tenants have keys");
        let state = gateway.state;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, state, &limits, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Gateway {
            url,
            mock,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
            _data: None,
        }
    }

    pub(crate) async fn shutdown(mut self) -> mock_upstream::MockUpstream {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
        self.mock
    }

    pub(crate) async fn chat_with(
        &self,
        key: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn chat(&self, model: &str, prompt: &str) -> (u16, Value) {
        self.chat_with(
            KEY_A,
            json!({"model": model, "messages": [{"role": "user", "content": prompt}]}),
            &[],
        )
        .await
    }

    pub(crate) async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn trace(&self, body: &Value) -> Value {
        let id = body["arbiter"]["trace_id"].as_str().unwrap();
        let (status, trace) = self.get(KEY_A, &format!("/v1/traces/{id}")).await;
        assert_eq!(status, 200, "{trace}");
        trace
    }

    /// Reads a whole SSE response: the `data:` payloads in order.
    async fn stream(&self, model: &str, prompt: &str) -> Vec<String> {
        let resp = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(KEY_A)
            .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": prompt}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let text = tokio::time::timeout(Duration::from_secs(10), resp.text())
            .await
            .expect("stream ends")
            .unwrap();
        text.split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .map(String::from)
            .collect()
    }
}

impl Gateway {
    /// How a request ended, sent as JSON or as a stream: the status, and the error code
    /// or else the answering model (a stream's from its final chunk, or its error frame).
    async fn outcome(&self, model: &str, headers: &[(&str, &str)], stream: bool) -> (u16, String) {
        let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "2+2?"}]});
        let mut req = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(KEY_A)
            .json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = tokio::time::timeout(Duration::from_secs(10), resp.text())
            .await
            .expect("response ends")
            .unwrap();
        let last = match (status, stream) {
            (200, true) => {
                let frames: Vec<&str> = text
                    .split("\n\n")
                    .filter_map(|f| f.strip_prefix("data: "))
                    .filter(|f| *f != "[DONE]")
                    .collect();
                serde_json::from_str(frames.last().expect("a frame")).unwrap()
            }
            _ => serde_json::from_str::<Value>(&text).unwrap(),
        };
        let what = match last["error"]["code"].as_str() {
            Some(code) => code,
            None => last["arbiter"]["model"].as_str().unwrap_or("?"),
        };
        (status, what.to_string())
    }
}

fn content(body: &Value) -> &str {
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
}

fn attempts(trace: &Value) -> Vec<Value> {
    trace["attempts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn single_model_call_with_usage_trace_and_feedback() {
    let g = Gateway::start().await;
    let (status, body) = g.chat("right", "What is 2+2?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(content(&body), "2 + 2 = 4\n#### 4");
    assert_eq!(body["usage"]["prompt_tokens"], 7);
    assert_eq!(body["arbiter"]["outcome"], "unverified");
    assert!(body["arbiter"]["cost_usd"].as_f64().unwrap() > 0.0);
    let trace = g.trace(&body).await;
    assert_eq!(attempts(&trace).len(), 1);
    assert_eq!(trace["attempts"][0]["model"], "right");
    let fb = g
        .http
        .post(format!("{}/v1/feedback", g.url))
        .bearer_auth(KEY_A)
        .json(&json!({"request_id": body["arbiter"]["trace_id"], "correct": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(fb.status(), 200);
    let bad = g
        .http
        .post(format!("{}/v1/feedback", g.url))
        .bearer_auth(KEY_A)
        .json(&json!({"request_id": "nope", "correct": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 404);
}

#[tokio::test]
async fn verification_cascade_and_best_of() {
    let g = Gateway::start().await;
    let (status, body) = g.chat("verified", "2+2?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["arbiter"]["outcome"], "accepted");
    assert_eq!(body["arbiter"]["verdicts"][0]["plugin"], "math");

    // Cascade: the cheap model's wrong answer is rejected, the step above accepted.
    let (_, body) = g.chat("cascade", "2+2?").await;
    assert_eq!(body["arbiter"]["model"], "right", "{body}");
    assert_eq!(body["arbiter"]["candidates_tried"], 2);
    let trace = g.trace(&body).await;
    let outcomes: Vec<&str> = trace["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rejected", "accepted"]);

    // best_of with a cross-candidate step picks the right one of three.
    let (_, body) = g.chat("best-of", "2+2?").await;
    assert_eq!(content(&body), "2 + 2 = 4\n#### 4", "{body}");
    assert_eq!(body["arbiter"]["candidates_tried"], 3);
}

/// With `select = true` the cross-candidate ranking decides: acceptance only breaks its
/// ties, so a sample the selection ranks first wins although the verifier rejected it.
#[tokio::test]
async fn best_of_ranks_by_the_selection_not_by_acceptance() {
    let g = Gateway::start().await;
    let (status, body) = g.chat("best-of-vote", "2+2?").await;
    assert_eq!(status, 200, "{body}");
    assert!(content(&body).ends_with("2 + 2 = 5\n#### 4"), "{body}");
    assert_eq!(body["arbiter"]["model"], "slip", "{body}");
    let trace = g.trace(&body).await;
    let lone = trace["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["model"] == "lone")
        .unwrap();
    assert_eq!(lone["outcome"], "accepted", "{lone}");
}

/// best_of over tool calls: the tool-argument verifier (contract 0.2.0) sees each sample's
/// calls and the request's tool schemas, rejects the wrong-typed ones, and the answer is
/// the sample whose arguments are valid. A 0.1.0 verifier in the same chain runs on the
/// same samples, seeing their (empty) text only.
#[tokio::test]
async fn best_of_picks_the_tool_call_with_valid_arguments() {
    let g = Gateway::start().await;
    let weather = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "required": ["city"],
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}});
    for _ in 0..3 {
        let (status, body) = g
            .chat_with(
                KEY_A,
                json!({"model": "tools-best-of", "tools": [weather],
                    "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
                &[],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let message = &body["choices"][0]["message"];
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
        let arguments: Value = serde_json::from_str(
            message["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(arguments, json!({"city": "Paris", "days": 3}), "{body}");
        assert_eq!(body["arbiter"]["model"], "tools", "{body}");
        let trace = g.trace(&body).await;
        let verdicts: Vec<(String, String, String)> = attempts(&trace)
            .iter()
            .flat_map(|a| {
                let model = a["model"].as_str().unwrap_or("").to_string();
                a["verdicts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |v| {
                        (
                            model.clone(),
                            v["plugin"].as_str().unwrap_or("").to_string(),
                            v["decision"].as_str().unwrap_or("").to_string(),
                        )
                    })
            })
            .collect();
        let tool_args = |model: &str, decision: &str| {
            verdicts
                .iter()
                .filter(|(m, p, d)| m == model && p == "tool-args" && d == decision)
                .count()
        };
        assert_eq!(tool_args("tools-bad", "reject"), 2, "{trace:#}");
        assert_eq!(tool_args("tools", "accept"), 1, "{trace:#}");
        // Each attempt keeps the calls its verdicts were about.
        for a in attempts(&trace) {
            let args = a["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap();
            let valid = args == r#"{"city":"Paris","days":3}"#;
            assert_eq!(valid, a["model"] == "tools", "{a:#}");
        }
    }
}

#[tokio::test]
async fn router_plugin_picks_and_escalates() {
    let g = Gateway::start().await;
    let (status, body) = g.chat("route", "What is 2 + 2?").await;
    assert_eq!(status, 200, "{body}");
    let trace = g.trace(&body).await;
    let a = attempts(&trace);
    assert_eq!(a[0]["kind"], "router");
    assert_eq!(a[1]["model"], "wrong", "easy prompt: cheap model first");
    assert_eq!(a[1]["outcome"], "rejected");
    assert_eq!(a[2]["model"], "right", "escalated");
    assert_eq!(body["arbiter"]["outcome"], "accepted");
}

#[tokio::test]
async fn race_cancels_the_loser_at_the_upstream() {
    let g = Gateway::start().await;
    let started = Instant::now();
    let (status, body) = g.chat("race", "2+2?").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "the fast branch won: {:?}",
        started.elapsed()
    );
    assert_eq!(body["arbiter"]["model"], "right@150");
    assert_eq!(body["arbiter"]["cancelled"], 1);
    // The mock saw the slow request's connection close before it could answer.
    let mut seen = 0;
    for _ in 0..100 {
        seen = g.mock.state.cancelled("right@2000");
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 1, "upstream saw the cancellation");
    let trace = g.trace(&body).await;
    let cancelled: Vec<Value> = attempts(&trace)
        .into_iter()
        .filter(|a| a["outcome"] == "cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["model"], "right@2000");
    assert!(
        cancelled[0]["cost_usd"].as_f64().unwrap() > 0.0,
        "the prompt's cost is recorded"
    );
    assert_eq!(cancelled[0]["output_tokens"], 0);
}

/// Log lines of the test that asks for them. One global subscriber writes each line to
/// the buffer of the thread that logged it (the tests' runtimes run every task on the
/// test's own thread): a scoped subscriber misses events whose call sites other tests,
/// running in parallel without one, registered first.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

struct ThisThread;

impl std::io::Write for ThisThread {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(logs) = &*c.borrow() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Logs {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(|| ThisThread)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        let logs = Logs::default();
        CAPTURING.with(|c| *c.borrow_mut() = Some(logs.clone()));
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A client that goes away cancels its pipeline: the in-flight upstream call is dropped
/// (the mock sees it), and the trace still records everything done, findable by the id
/// every log line of the request carries, plugins' own lines included.
#[tokio::test]
async fn a_client_that_goes_away_cancels_its_pipeline_and_its_trace_is_kept() {
    let logs = Logs::capture();
    let g = Gateway::start().await;
    let gone = g
        .http
        .post(format!("{}/v1/chat/completions", g.url))
        .bearer_auth(KEY_A)
        .timeout(Duration::from_millis(500))
        .json(&json!({"model": "judged-slow", "messages": [{"role": "user", "content": "2+2?"}]}))
        .send()
        .await;
    assert!(gone.is_err(), "the slow step outlasts the client");
    let mut finished = None;
    for _ in 0..250 {
        finished = logs
            .text()
            .lines()
            .find(|l| l.contains("request finished"))
            .map(String::from);
        if finished.is_some() && g.mock.state.cancelled("right@2000") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(g.mock.state.cancelled("right@2000"), 1, "upstream saw it");
    let finished = finished.unwrap_or_else(|| panic!("no last line: {}", logs.text()));
    assert!(finished.contains("outcome=Cancelled"), "{finished}");
    let id = finished
        .split("request{id=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no request span: {finished}"));
    let text = logs.text();
    let of_request: Vec<&str> = text.lines().filter(|l| l.contains(id)).collect();
    assert!(
        of_request
            .iter()
            .any(|l| l.contains("asking the judge model") && l.contains("plugin=\"judge\"")),
        "the plugin's own line, in the request's span: {of_request:#?}"
    );
    assert!(
        of_request.iter().any(|l| l.contains("model call")),
        "{of_request:#?}"
    );

    let (status, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["outcome"], "cancelled");
    assert!(trace["error"]
        .as_str()
        .unwrap()
        .starts_with("client_disconnected"));
    let all = attempts(&trace);
    let models: Vec<(&str, &str)> = all
        .iter()
        .filter(|a| a["kind"] == "model")
        .map(|a| (a["model"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        models,
        [
            ("wrong", "rejected"),
            ("params", "unverified"),
            ("right@2000", "cancelled")
        ],
        "{trace}"
    );
    let cancelled = attempts(&trace)
        .into_iter()
        .find(|a| a["outcome"] == "cancelled")
        .unwrap();
    assert!(
        cancelled["cost_usd"].as_f64().unwrap() > 0.0,
        "the prompt was paid for"
    );
}

#[tokio::test]
async fn hedged_requests_start_only_when_needed() {
    let g = Gateway::start().await;
    let (_, body) = g.chat("hedge-unneeded", "2+2?").await;
    assert_eq!(body["arbiter"]["model"], "right");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        g.mock.state.calls("right@300"),
        0,
        "the backup never started"
    );

    let started = Instant::now();
    let (_, body) = g.chat("hedge-needed", "2+2?").await;
    assert_eq!(
        body["arbiter"]["model"], "right@150",
        "the backup started after 100 ms and won"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(g.mock.state.calls("right@150"), 1);
}

#[tokio::test]
async fn retries_honour_retry_after_and_stop_on_client_errors() {
    let g = Gateway::start().await;
    for model in ["flaky429", "flaky503"] {
        let (status, body) = g.chat(model, "2+2?").await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(
            g.mock.state.calls(model),
            3,
            "{model}: two failures, then success"
        );
    }
    // The upstream refused the request itself: the caller's to fix, so a 400 as OpenAI
    // would send, with the upstream's reason.
    let (status, body) = g.chat("bad400", "2+2?").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "upstream_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 400: bad request"),
        "{body}"
    );
    assert_eq!(g.mock.state.calls("bad400"), 1, "4xx is not retried");

    // Streamed, the refusal comes before any byte of an answer: the same status and
    // error, not a 200 whose stream holds an error. The attempt is traced as failed.
    let reply = g
        .http
        .post(format!("{}/v1/chat/completions", g.url))
        .bearer_auth(KEY_A)
        .json(&json!({"model": "bad400", "stream": true, "messages": [{"role": "user", "content": "2+2?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    let id = message
        .rsplit_once("(trace ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no trace id: {message}"));
    let (status, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["outcome"], "failed");
    assert_eq!(trace["attempts"][0]["outcome"], "failed");
}

/// A judge plugin reaches its pipeline's own models and its `judge_models`, and nothing
/// else, however it asks; one naming no model gets the cheapest of those.
#[tokio::test]
async fn judges_ask_only_the_models_their_pipeline_allows() {
    let g = Gateway::start().await;
    let (status, body) = g.chat("judge-models", "2+2?").await;
    assert_eq!(status, 200, "{body}");
    let trace = g.trace(&body).await;
    let verdicts = attempts(&trace)[0]["verdicts"].as_array().unwrap().clone();
    let reason = |i: usize| {
        verdicts[i]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        reason(0).starts_with("judge right said"),
        "the pipeline's model: {trace}"
    );
    assert!(
        reason(1).starts_with("judge params said"),
        "a judge model: {trace}"
    );
    let denied = verdicts[2]["error"].as_str().unwrap_or_default();
    assert!(
        denied.contains("Denied") && denied.contains("`echo`") && denied.contains("judge_models"),
        "another configured model: {trace}"
    );
    assert!(
        reason(3).starts_with("judge params said"),
        "the cheapest allowed: {trace}"
    );
    assert_eq!(
        g.mock.state.calls("echo"),
        0,
        "the denied call never left the host"
    );
    assert_eq!(g.mock.state.calls("params"), 2);
}

/// OpenAI's sampling parameters reach the upstream on every model call of a pipeline;
/// a judge plugin's own calls carry only its own; what no pipeline can honour is refused
/// by name rather than ignored; the provider's finish reason comes back.
#[tokio::test]
async fn sampling_parameters_reach_every_model_call_or_are_refused() {
    let g = Gateway::start().await;
    let sampling = json!({
        "max_completion_tokens": 64, "temperature": 0.5, "top_p": 0.9, "stop": ["END", "\n\n"],
        "seed": 11, "presence_penalty": 0.25, "frequency_penalty": -0.25,
        "logit_bias": {"50256": -100}, "response_format": {"type": "json_object"}, "user": "u-7",
    });
    let expected = json!({
        "max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "stop": ["END", "\n\n"],
        "seed": 11, "presence_penalty": 0.25, "frequency_penalty": -0.25,
        "logit_bias": {"50256": -100.0}, "response_format": {"type": "json_object"}, "user": "u-7",
        "logprobs": false,
    });
    let mut body = sampling.clone();
    body["messages"] = json!([{"role": "user", "content": "hi"}]);
    body["logprobs"] = json!(false);

    body["model"] = json!("params");
    let (status, reply) = g.chat_with(KEY_A, body.clone(), &[]).await;
    assert_eq!(status, 200, "{reply}");
    let seen: Value = serde_json::from_str(content(&reply)).unwrap();
    assert_eq!(seen, expected);

    // Through a cascade whose verifier asks a model itself: both steps get the caller's
    // parameters, the judge's call only its own `max_tokens`.
    body["model"] = json!("judged-params");
    let (status, reply) = g.chat_with(KEY_A, body.clone(), &[]).await;
    assert_eq!(status, 200, "{reply}");
    let trace = g.trace(&reply).await;
    let calls: Vec<Value> = attempts(&trace)
        .into_iter()
        .filter(|a| a["kind"] == "model")
        .map(|a| serde_json::from_str(a["text"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        calls,
        vec![expected.clone(), json!({"max_tokens": 4}), expected.clone()],
        "{trace}"
    );
    assert_eq!(g.mock.state.calls("params"), 4);

    // What no pipeline can honour, then values out of OpenAI's limits.
    let (refused, invalid) = ("unsupported_parameter", "invalid_value");
    let bad_requests = [
        ("functions", json!([{"name": "f"}]), refused),
        ("audio", json!({"voice": "alloy", "format": "wav"}), refused),
        ("modalities", json!(["text", "audio"]), refused),
        (
            "tools",
            json!([{"type": "function", "function": {"name": "no spaces"}}]),
            invalid,
        ),
        ("tool_choice", json!("sometimes"), invalid),
        ("top_logprobs", json!(3), invalid),
        ("n", json!(17), invalid),
        ("temperature", json!(2.5), invalid),
        ("top_p", json!(1.5), invalid),
        ("stop", json!(["a", "b", "c", "d", "e"]), invalid),
        ("response_format", json!({"type": "yaml"}), invalid),
    ];
    for (param, value, code) in bad_requests {
        let mut bad = body.clone();
        bad["model"] = json!("params");
        bad[param] = value;
        let (status, reply) = g.chat_with(KEY_A, bad, &[]).await;
        assert_eq!(status, 400, "{param}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply["error"]["param"], param, "{reply}");
    }
    // Tags become statistics per model and trace rows: a request brings a few, not many.
    let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    let mut tagged = body.clone();
    tagged["model"] = json!("params");
    tagged["arbiter"] = json!({ "tags": many });
    let long = "x".repeat(65);
    for (request, header) in [
        (tagged, None),
        (
            json!({"model": "params", "messages": body["messages"]}),
            Some(long.as_str()),
        ),
    ] {
        let headers: Vec<(&str, &str)> =
            header.map(|h| ("x-arbiter-tags", h)).into_iter().collect();
        let (status, reply) = g.chat_with(KEY_A, request, &headers).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["param"], "tags", "{reply}");
    }
    assert_eq!(
        g.mock.state.calls("params"),
        4,
        "refused before any model call"
    );

    // `stop` as one string, as the API also takes it.
    body["model"] = json!("params");
    body["stop"] = json!("END");
    let (_, reply) = g.chat_with(KEY_A, body, &[]).await;
    let seen: Value = serde_json::from_str(content(&reply)).unwrap();
    assert_eq!(seen["stop"], json!(["END"]));

    // The finish reason is the provider's, in both shapes and in the trace.
    let (status, reply) = g.chat("cut", "2+2?").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(
        g.trace(&reply).await["attempts"][0]["finish_reason"],
        "length"
    );
    let frames = g.stream("cut", "2+2?").await;
    let end: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert_eq!(end["choices"][0]["finish_reason"], "length");
    let (_, reply) = g.chat("right", "2+2?").await;
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
}

/// The feedback loop: a router granted `stats` stops calling a model whose recorded
/// outcomes on the task's tag are failures, judged by verifiers or by users' feedback;
/// and what it reads is its own tenant's traffic only.
#[tokio::test]
async fn routers_learn_from_their_own_tenants_outcomes_only() {
    let g = Gateway::start().await;
    let tagged = [("x-arbiter-tags", "arith")];
    let ask =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "2+2?"}]});

    // Tenant a: the cheap model's answers are rejected by the verifier three times...
    for i in 0..3 {
        let (status, reply) = g.chat_with(KEY_A, ask("learned"), &tagged).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            reply["arbiter"]["candidates_tried"], 2,
            "request {i}: {reply}"
        );
        assert_eq!(reply["arbiter"]["model"], "right");
    }
    assert_eq!(g.mock.state.calls("wrong"), 3);
    // ... so the router skips it.
    let (_, reply) = g.chat_with(KEY_A, ask("learned"), &tagged).await;
    assert_eq!(reply["arbiter"]["candidates_tried"], 1, "{reply}");
    assert_eq!(reply["arbiter"]["outcome"], "accepted");
    assert_eq!(g.mock.state.calls("wrong"), 3);

    // Tenant b, same pipeline and tag, has no outcomes of its own: it starts cheap.
    let (_, reply) = g.chat_with(KEY_B, ask("learned"), &tagged).await;
    assert_eq!(reply["arbiter"]["candidates_tried"], 2, "{reply}");
    assert_eq!(g.mock.state.calls("wrong"), 4);

    // Tenant c has no verifier: unjudged answers teach nothing, however many...
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (status, reply) = g.chat_with(KEY_C, ask("learned-open"), &tagged).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["arbiter"]["model"], "wrong", "{reply}");
        ids.push(reply["arbiter"]["trace_id"].clone());
    }
    // ... until its users say the answers were wrong.
    for id in &ids[..3] {
        let fb = g
            .http
            .post(format!("{}/v1/feedback", g.url))
            .bearer_auth(KEY_C)
            .json(&json!({"request_id": id, "correct": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(fb.status(), 200);
    }
    let (_, reply) = g.chat_with(KEY_C, ask("learned-open"), &tagged).await;
    assert_eq!(reply["arbiter"]["model"], "right", "{reply}");
    assert_eq!(g.mock.state.calls("wrong"), 8);
}

#[tokio::test]
async fn timeouts_and_broken_upstreams_are_typed_errors_never_hangs() {
    let g = Gateway::start().await;
    let started = Instant::now();
    let (status, body) = g
        .chat_with(
            KEY_A,
            json!({"model": "hang", "messages": [{"role": "user", "content": "hi"}]}),
            &[("x-arbiter-deadline-ms", "300")],
        )
        .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "deadline_exceeded");
    assert!(started.elapsed() < Duration::from_secs(3));

    let (status, body) = g.chat("malformed", "hi").await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_malformed", "{body}");

    for model in ["broken-stream", "stall-stream"] {
        let frames = g.stream(model, "hi").await;
        let last: Value = serde_json::from_str(frames.last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["code"], "upstream_stream_broken",
            "{model}: {frames:?}"
        );
    }
}

#[tokio::test]
async fn streaming_passthrough_and_verified() {
    let g = Gateway::start().await;
    let frames = g.stream("right", "2+2?").await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "2 + 2 = 4\n#### 4");
    assert!(chunks.len() >= 4, "streamed piece by piece");
    let end = chunks.last().unwrap();
    assert_eq!(end["choices"][0]["finish_reason"], "stop");
    assert!(
        end.get("usage").is_none(),
        "usage only when asked for: {end}"
    );
    assert_eq!(end["arbiter"]["calls"][0]["completion_tokens"], 5);
    let trace_id = end["arbiter"]["trace_id"].as_str().unwrap();
    let (status, trace) = g.get(KEY_A, &format!("/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(trace["answer"], "2 + 2 = 4\n#### 4");

    let frames = g.stream("verified", "2+2?").await;
    let end: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert_eq!(end["arbiter"]["outcome"], "accepted");
}

#[tokio::test]
async fn budgets_limit_cost_calls_and_adapt_best_of() {
    let g = Gateway::start().await;
    // Nothing is started that the budget cannot pay for.
    let (status, body) = g
        .chat_with(
            KEY_A,
            json!({"model": "right", "messages": [{"role": "user", "content": "hi"}]}),
            &[("x-arbiter-max-cost-usd", "0.0000001")],
        )
        .await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "over_budget");
    assert_eq!(g.mock.state.calls("right"), 0);
    // A cost limit is a real amount: NaN would lift it without a word.
    let ask = json!({"model": "right", "messages": [{"role": "user", "content": "hi"}]});
    for usd in ["NaN", "-1", "inf"] {
        let (status, body) = g
            .chat_with(KEY_A, ask.clone(), &[("x-arbiter-max-cost-usd", usd)])
            .await;
        assert_eq!(status, 400, "{usd}: {body}");
        assert_eq!(body["error"]["code"], "invalid_header");
    }
    let mut negative = ask.clone();
    negative["arbiter"] = json!({"budget": {"max_cost_usd": -3}});
    let (status, body) = g.chat_with(KEY_A, negative, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(g.mock.state.calls("right"), 0);

    // One call allowed: the cascade cannot escalate; with on_budget = "error" that is an error.
    let (status, body) = g
        .chat_with(
            KEY_A,
            json!({"model": "cascade-strict", "messages": [{"role": "user", "content": "2+2?"}]}),
            &[("x-arbiter-max-calls", "1")],
        )
        .await;
    assert_eq!(status, 402, "{body}");
    // The request body can carry a budget too; it only tightens.
    let (status, _) = g
        .chat_with(KEY_A, json!({"model": "cascade-strict", "messages": [{"role": "user", "content": "2+2?"}], "arbiter": {"budget": {"max_calls": 1}}}), &[])
        .await;
    assert_eq!(status, 402);

    // best_of: without a deadline it samples sequentially and stops at the first
    // accepted answer; a deadline shorter than k x latency makes it parallel.
    let (_, body) = g.chat("best-of-slow", "2+2?").await;
    assert_eq!(
        body["arbiter"]["candidates_tried"], 1,
        "sequential, early stop: {body}"
    );
    assert_eq!(g.mock.state.max_in_flight("right@300"), 1);
    let (status, body) = g
        .chat_with(
            KEY_A,
            json!({"model": "best-of-slow", "messages": [{"role": "user", "content": "2+2?"}]}),
            &[("x-arbiter-deadline-ms", "700")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        g.mock.state.max_in_flight("right@300"),
        3,
        "parallel under a tight deadline"
    );
    let bad = g
        .chat_with(
            KEY_A,
            json!({"model": "right", "messages": [{"role": "user", "content": "x"}]}),
            &[("x-arbiter-max-calls", "many")],
        )
        .await;
    assert_eq!(bad.0, 400);
}

/// Every budget, whether the pipeline's configuration or the request's headers set it,
/// holds for a streamed request as for a JSON one, on a pipeline and on a model: both
/// run through the same engine.
#[tokio::test]
async fn budgets_hold_for_streams_as_for_json() {
    let g = Gateway::start().await;
    let deadline = [("x-arbiter-deadline-ms", "100")];
    let cost = [("x-arbiter-max-cost-usd", "0.000001")];
    let calls = [("x-arbiter-max-calls", "0")];
    let depth = [("x-arbiter-max-depth", "0")];
    // Target, headers, then the status and error code (or answering model) expected.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 12] = [
        // From the pipeline's configuration.
        ("capped-deadline", &[], 504, "deadline_exceeded"),
        ("capped-cost", &[], 402, "over_budget"),
        ("capped-calls", &[], 402, "over_budget"),
        // At depth 0 the task is answered directly, not decomposed.
        ("capped-depth", &[], 200, "echo"),
        // From headers, on a pipeline.
        ("slow", &deadline, 504, "deadline_exceeded"),
        ("slow", &cost, 402, "over_budget"),
        ("slow", &calls, 402, "over_budget"),
        ("chain", &depth, 200, "echo"),
        // From headers, on a model.
        ("right@300", &deadline, 504, "deadline_exceeded"),
        ("right@300", &cost, 402, "over_budget"),
        ("right@300", &calls, 402, "over_budget"),
        ("right@300", &depth, 200, "right@300"),
    ];
    for (target, headers, status, what) in cases {
        for stream in [false, true] {
            assert_eq!(
                g.outcome(target, headers, stream).await,
                (status, what.to_string()),
                "{target} {headers:?} stream={stream}"
            );
        }
    }
    assert_eq!(g.mock.state.calls("right"), 0, "refused before the call");
}

#[tokio::test]
async fn decomposition_runs_a_dag_and_composes() {
    let g = Gateway::start().await;
    let (status, body) = g
        .chat("chain", "1. first question?\n2. second question?")
        .await;
    assert_eq!(status, 200, "{body}");
    let answer = content(&body);
    assert!(answer.starts_with("1. echo: first question?"), "{answer}");
    // q2 depends on q1: its prompt carried q1's answer.
    assert!(
        answer.contains("2. echo: Previous answer: echo: first question?"),
        "{answer}"
    );
    let trace = g.trace(&body).await;
    let a = attempts(&trace);
    let q1 = a
        .iter()
        .find(|x| x["node"].as_str().unwrap().ends_with("/q1"))
        .unwrap();
    let q2 = a
        .iter()
        .find(|x| x["node"].as_str().unwrap().ends_with("/q2"))
        .unwrap();
    assert!(
        q2["started_ms"].as_f64().unwrap()
            >= q1["started_ms"].as_f64().unwrap() + q1["latency_ms"].as_f64().unwrap() - 1.0
    );

    // Independent sub-tasks, each through another pipeline (a cascade).
    let (status, body) = g.chat("split", "1. 2+2?\n2. 2+2 again?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        content(&body),
        "1. 2 + 2 = 4\n#### 4\n\n2. 2 + 2 = 4\n#### 4"
    );
    assert_eq!(body["arbiter"]["outcome"], "accepted");
}

#[tokio::test]
async fn tenants_are_isolated_and_keys_required() {
    let g = Gateway::start().await;
    let (status, body) = g
        .chat_with(
            "sk-nope",
            json!({"model": "right", "messages": [{"role": "user", "content": "x"}]}),
            &[],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
    // The key is checked before the body is parsed: a bad key with a bad body is a 401.
    for path in ["/v1/chat/completions", "/v1/embeddings", "/v1/feedback"] {
        let reply = g
            .http
            .post(format!("{}{path}", g.url))
            .bearer_auth("sk-nope")
            .body("{oops")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401, "{path}");
        let error = reply.json::<Value>().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_api_key", "{path}: {error}");
    }
    let (status, body) = g.chat("only-b", "x").await;
    assert_eq!(status, 404, "tenant a cannot use b's pipeline: {body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    let (status, body) = g
        .chat_with(
            KEY_B,
            json!({"model": "only-b", "messages": [{"role": "user", "content": "x"}]}),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let id = body["arbiter"]["trace_id"].as_str().unwrap();
    assert_eq!(
        g.get(KEY_A, &format!("/v1/traces/{id}")).await.0,
        404,
        "a cannot read b's trace"
    );
    assert_eq!(g.get(KEY_B, &format!("/v1/traces/{id}")).await.0, 200);
    // Nor judge it: feedback feeds b's routers, so a's would poison them.
    let judge = |key: &'static str| {
        g.http
            .post(format!("{}/v1/feedback", g.url))
            .bearer_auth(key)
            .json(&json!({"request_id": id, "correct": false}))
            .send()
    };
    assert_eq!(
        judge(KEY_A).await.unwrap().status(),
        404,
        "a judges b's request"
    );
    assert_eq!(judge(KEY_B).await.unwrap().status(), 200);
    let (_, models) = g.get(KEY_A, "/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"cascade") && !ids.contains(&"only-b"),
        "{ids:?}"
    );
    let (status, model) = g.get(KEY_A, "/v1/models/cascade").await;
    assert_eq!((status, &model["id"]), (200, &json!("cascade")), "{model}");
    assert_eq!(model["arbiter"]["kind"], "pipeline");
    let (status, model) = g.get(KEY_A, "/v1/models/only-b").await;
    assert_eq!(status, 404, "a cannot see b's pipeline: {model}");
    assert_eq!(model["error"]["code"], "model_not_found");
    assert_eq!(g.get(KEY_B, "/v1/models/only-b").await.0, 200);
    assert_eq!(
        g.get(KEY_A, "/v1/models/right").await.1["arbiter"]["kind"],
        "model"
    );
    let (status, body) = g
        .chat_with(KEY_A, json!({"model": "right", "messages": []}), &[])
        .await;
    assert_eq!(status, 400, "{body}");
    let raw = g
        .http
        .post(format!("{}/v1/chat/completions", g.url))
        .bearer_auth(KEY_A)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
}

/// Requests the router itself refuses (too large, unknown path, wrong method) get
/// OpenAI's error shape too: axum's defaults are plain text or an empty body, which
/// OpenAI clients cannot read as an error.
#[tokio::test]
async fn router_refusals_are_openai_errors() {
    let g = Gateway::start().await;
    let huge = "x".repeat(1 << 20);
    for path in ["/v1/chat/completions", "/v1/embeddings", "/v1/feedback"] {
        let reply = g
            .http
            .post(format!("{}{path}", g.url))
            .bearer_auth(KEY_A)
            .json(&json!({"model": "right", "messages": [{"role": "user", "content": huge}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 413, "{path}");
        let error = reply.json::<Value>().await.unwrap();
        assert_eq!(error["error"]["code"], "request_too_large", "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1048576 bytes"),
            "{error}"
        );
    }
    assert_eq!(g.mock.state.calls("right"), 0);

    let (status, error) = g.get(KEY_A, "/v1/audio/speech").await;
    assert_eq!(status, 404);
    assert_eq!(
        (&error["error"]["code"], &error["error"]["message"]),
        (
            &json!("unknown_url"),
            &json!("Invalid URL (GET /v1/audio/speech)")
        ),
    );
    let (status, error) = g.get(KEY_A, "/v1/embeddings").await;
    assert_eq!(status, 405);
    assert_eq!(error["error"]["code"], "method_not_allowed", "{error}");
    let (status, error) = g.get(KEY_A, "/v1/chat/completions").await;
    assert_eq!(status, 405);
    assert_eq!(error["error"]["code"], "method_not_allowed", "{error}");

    // A body the server accepts still works after all that.
    assert_eq!(g.chat("right", "2+2?").await.0, 200);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let g = Gateway::start().await;
    g.chat("race", "2+2?").await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            g.http
                .get(format!("{}{path}", g.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let text = g
        .http
        .get(format!("{}/metrics", g.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for metric in [
        "arbiter_requests_total",
        "arbiter_request_duration_seconds",
        "arbiter_model_cost_usd_total",
        "arbiter_verdicts_total",
        "arbiter_cancellations_total",
        "arbiter_plugin_call_seconds",
    ] {
        assert!(text.contains(metric), "{metric} missing");
    }
}

#[tokio::test]
async fn traces_survive_restart_and_shutdown_finishes_in_flight_requests() {
    let data = tempfile::tempdir().unwrap();
    let g = Gateway::start_in(data.path(), None).await;
    let (_, body) = g.chat("verified", "2+2?").await;
    let id = body["arbiter"]["trace_id"].as_str().unwrap().to_string();
    // A slow request is in flight when shutdown starts; it still completes.
    let (url, http) = (g.url.clone(), g.http.clone());
    let slow = tokio::spawn(async move {
        http.post(format!("{url}/v1/chat/completions"))
            .bearer_auth(KEY_A)
            .json(&json!({"model": "right@800", "messages": [{"role": "user", "content": "2+2?"}]}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mock = g.shutdown().await;
    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "in-flight request finished during shutdown"
    );
    let g = Gateway::start_in(data.path(), Some(mock)).await;
    let (status, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
    assert_eq!(status, 200, "trace kept across restart");
    assert_eq!(trace["attempts"][0]["verdicts"][0]["plugin"], "math");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_client() {
    let g = Gateway::start().await;
    let script = common::repo_root().join("tests").join("openai_client.py");
    let url = format!("{}/v1", g.url);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(url)
            .arg(KEY_A)
            .output()
    })
    .await
    .unwrap()
    .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        [
            "json ok",
            "stream ok",
            "error ok",
            "parameters ok",
            "fields ok",
            "usage ok",
            "tools ok",
            "tools stream ok",
            "logprobs ok",
            "anthropic tools ok",
            "n ok",
            "embeddings ok",
        ]
        .iter()
        .all(|line| stdout.contains(line)),
        "{stdout}"
    );
}
