//! Tenants' own plugins and pipelines end to end, against a real `arbiter serve` child:
//! uploads (versions, the same bytes twice, every kind of bad component, quotas and
//! ceilings), pipelines over them (latest and pinned versions, validation), isolation
//! between tenants, deletes refused while in use, a pipeline replaced under load, and
//! kill -9 after an acknowledged change and during an upload.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::gateway::{code, Client, OPERATOR};
use crate::common::{guest, mock_upstream, reference_plugin};

fn write_config(path: &Path, data: &Path, mock: &str, runtime: &str) {
    std::fs::write(
        path,
        format!(
            r#"
[server]
data_dir = "{data}"

[runtime]
max_component_bytes = 4194304
{runtime}

[providers.mock]
kind = "openai"
base_url = "{mock}"

[models.right]
provider = "mock"
input_price = 1.0
output_price = 1.0

[models.wrong]
provider = "mock"
input_price = 1.0
output_price = 1.0

[models.secret]
provider = "mock"
input_price = 1.0
output_price = 1.0

[pipelines.shared]
tenants = ["*"]
type = "single"
model = "right"
"#,
            data = data.display(),
        ),
    )
    .unwrap();
}

/// A mock upstream and a configuration over it with a fresh data folder (in `dir`).
async fn scratch() -> (
    mock_upstream::MockUpstream,
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("arbiter.toml"), dir.path().join("data"));
    write_config(&config, &data, &mock.base_url, "");
    (mock, dir, config, data)
}

/// Tenant `name` with a key, whose policy allows the models `right` and `wrong` and
/// `plugins` (the plugin part of the policy).
async fn tenant(c: &Client, name: &str, plugins: Value) -> String {
    let policy = json!({"models": ["right", "wrong"], "plugins": plugins});
    let (s, t) = c
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": name, "policy": policy}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    c.new_key(name, json!({})).await
}

/// Sends an upload's head (declaring `len` bytes) and no body, and reads the answer.
fn send_head(url: &str, key: &str, len: usize) -> String {
    use std::io::Read;
    let addr = url.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(socket, "{}", upload_head(addr, key, len)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = socket.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

fn upload_head(addr: &str, key: &str, len: usize) -> String {
    format!("POST /v1/plugins?name=checker HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/wasm\r\ncontent-length: {len}\r\n\r\n")
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The verifier that judged a chat answer (`name@sha256:...` for a tenant's plugin).
fn verifier_of(reply: &Value) -> String {
    reply["arbiter"]["verdicts"][0]["plugin"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_upload_plugins_and_run_pipelines_of_their_own() {
    let (mock, dir, config, data) = scratch().await;
    let (mut child, c) = Client::spawn(&config).await;
    let alpha = tenant(&c, "alpha", json!({"max_versions": 3, "grants": ["model"]})).await;
    let beta = tenant(&c, "beta", json!({})).await;
    let trivial = bytes(&guest("trivial"));
    let gsm8k = bytes(&reference_plugin("gsm8k-verifier"));

    // A new version, then the same bytes again: the same version, nothing new stored.
    let (s, v1) = c.upload(&alpha, "name=checker", trivial.clone()).await;
    assert_eq!(s, 201, "{v1}");
    let v1_version = v1["version"].as_str().unwrap().to_string();
    assert!(v1_version.starts_with("sha256:") && v1_version.len() == 71);
    assert_eq!(
        (v1["world"].as_str(), v1["metadata"]["name"].as_str()),
        (Some("verifier"), Some("trivial"))
    );
    assert_eq!(v1["size_bytes"], trivial.len() as u64);
    let (s, again) = c.upload(&alpha, "name=checker", trivial.clone()).await;
    assert_eq!((s.as_u16(), &again["version"]), (200, &v1["version"]));
    let (s, e) = c
        .upload(&alpha, "name=checker&deadline_ms=500", trivial.clone())
        .await;
    assert_eq!((s.as_u16(), code(&e)), (409, "version_exists"), "{e}");

    // Alpha's pipeline over its plugin; beta can neither see nor use nor learn of either.
    let checked = json!({"type": "single", "model": "right", "verify": [{"plugin": "checker"}]});
    let (s, p) = c
        .put(&alpha, "/v1/pipelines/checked", checked.clone())
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, _, reply) = c.chat(&alpha, "checked").await;
    assert_eq!(s, 200, "{reply}");
    assert_eq!(verifier_of(&reply), format!("checker@{v1_version}"));
    let (_, models) = c.get(&alpha, "/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"checked") && ids.contains(&"shared"),
        "{ids:?}"
    );
    for path in [
        "/v1/plugins/checker",
        "/v1/pipelines/checked",
        "/v1/models/checked",
    ] {
        let (s, _) = c.get(&beta, path).await;
        assert_eq!(s, 404, "{path}");
    }
    let (_, list) = c.get(&beta, "/v1/plugins").await;
    assert_eq!(list["data"], json!([]));
    for path in ["/v1/plugins/checker", "/v1/pipelines/checked"] {
        let (s, _) = c.delete(&beta, path).await;
        assert_eq!(s, 404, "{path}");
    }
    let trace = format!(
        "/v1/traces/{}",
        reply["arbiter"]["trace_id"].as_str().unwrap()
    );
    assert_eq!(c.get(&alpha, &trace).await.0, 200);
    assert_eq!(c.get(&beta, &trace).await.0, 404);
    let (s, _, e) = c.chat(&beta, "checked").await;
    assert_eq!((s.as_u16(), code(&e)), (404, "model_not_found"));
    let (s, e) = c.put(&beta, "/v1/pipelines/mine", checked.clone()).await;
    assert_eq!((s.as_u16(), code(&e)), (400, "invalid_pipeline"), "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown plugin `checker`"));
    // Beta's own `checker` is another plugin under the same name.
    let (s, b1) = c.upload(&beta, "name=checker", gsm8k.clone()).await;
    assert_eq!(s, 201, "{b1}");
    let (s, _) = c.put(&beta, "/v1/pipelines/checked", checked.clone()).await;
    assert_eq!(s, 201);
    let (_, _, reply) = c.chat(&beta, "checked").await;
    assert_eq!(
        verifier_of(&reply),
        format!("checker@{}", b1["version"].as_str().unwrap())
    );

    // Pipelines are validated as at start-up, and against the tenant's policy.
    for (name, body, want) in [
        (
            "p",
            json!({"type": "single", "model": "secret"}),
            "unknown model `secret`",
        ),
        (
            "p",
            json!({"type": "single", "model": "right", "tenants": ["*"]}),
            "`tenants`",
        ),
        ("p", json!({"type": "single", "modle": "right"}), "modle"),
        (
            "p",
            json!({"type": "single", "model": "right", "verify": [{"plugin": "checker@sha256:00"}]}),
            "unknown plugin",
        ),
        (
            "p",
            json!({"type": "route", "router": {"plugin": "checker"}, "branches": {"a": {"type": "single", "model": "right"}}}),
            "as a router",
        ),
        (
            "loop",
            json!({"type": "pipeline", "name": "loop"}),
            "runs itself",
        ),
    ] {
        let (s, e) = c.put(&alpha, &format!("/v1/pipelines/{name}"), body).await;
        assert_eq!((s.as_u16(), code(&e)), (400, "invalid_pipeline"), "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(want),
            "{e}"
        );
    }
    let (s, e) = c.put(&alpha, "/v1/pipelines/shared", checked.clone()).await;
    assert_eq!((s.as_u16(), code(&e)), (409, "name_taken"));
    let (s, e) = c.put(&alpha, "/v1/pipelines/has@at", checked.clone()).await;
    assert_eq!((s.as_u16(), code(&e)), (400, "invalid_name"));

    // A second version: the bare name follows it, a pinned reference stays.
    let (s, v2) = c.upload(&alpha, "name=checker", gsm8k.clone()).await;
    assert_eq!(s, 201, "{v2}");
    let v2_version = v2["version"].as_str().unwrap().to_string();
    let pinned = json!({"type": "single", "model": "right", "verify": [{"plugin": format!("checker@{v1_version}")}]});
    let (s, p) = c.put(&alpha, "/v1/pipelines/pinned", pinned).await;
    assert_eq!(s, 201, "{p}");
    let (_, _, reply) = c.chat(&alpha, "checked").await;
    assert_eq!(verifier_of(&reply), format!("checker@{v2_version}"));
    let (_, _, reply) = c.chat(&alpha, "pinned").await;
    assert_eq!(verifier_of(&reply), format!("checker@{v1_version}"));
    let (_, shown) = c.get(&alpha, "/v1/plugins/checker").await;
    assert_eq!(shown["latest"], v2_version.as_str());
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);
    assert_eq!(shown["used_by"], json!(["checked", "pinned"]));
    // A pipeline running another of the tenant's pipelines, and a shared one.
    let (s, p) = c
        .put(&alpha, "/v1/pipelines/both", json!({"type": "cascade", "steps": [{"type": "pipeline", "name": "pinned"}, {"type": "pipeline", "name": "shared"}]}))
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, _, reply) = c.chat(&alpha, "both").await;
    assert_eq!(s, 200, "{reply}");

    // Every kind of bad upload: a typed 4xx naming the problem, and nothing left behind.
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let too_large = vec![0u8; 4 * 1024 * 1024 + 1];
    for (query, body, want) in [
        (
            "name=bad",
            b"hello, world".to_vec(),
            (400, "not_a_component"),
        ),
        ("name=bad", core_module, (400, "not_a_component")),
        (
            "name=bad",
            trivial[..trivial.len() / 2].to_vec(),
            (400, "malformed"),
        ),
        (
            "name=bad",
            bytes(&guest("wrong-world")),
            (422, "wrong_world"),
        ),
        (
            "name=bad",
            bytes(&guest("wants-model")),
            (403, "capability_not_granted"),
        ),
        (
            "name=bad&grants=stats",
            bytes(&guest("wants-model")),
            (403, "capability_not_allowed"),
        ),
        (
            "name=bad&grants=files",
            bytes(&guest("wants-model")),
            (400, "invalid_value"),
        ),
        (
            "name=bad&deadline_ms=60000",
            trivial.clone(),
            (403, "limit_above_ceiling"),
        ),
        (
            "name=bad&memory_mb=0",
            trivial.clone(),
            (400, "invalid_value"),
        ),
        ("name=b@d", trivial.clone(), (400, "invalid_name")),
        ("nme=bad", trivial.clone(), (400, "invalid_value")),
    ] {
        let (s, e) = c.upload(&alpha, query, body).await;
        assert_eq!((s.as_u16(), code(&e)), want, "{query}: {e}");
    }
    // Too large by its declared length: refused before a byte of the body is read.
    let head = send_head(&c.url, &alpha, too_large.len());
    assert!(
        head.starts_with("HTTP/1.1 413") && head.contains("plugin_too_large"),
        "{head}"
    );
    // Too large without a length up front: cut off while it is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        too_large.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let reply = c
        .http
        .post(format!("{}/v1/plugins?name=bad", c.url))
        .bearer_auth(&alpha)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);
    let (_, list) = c.get(&alpha, "/v1/plugins").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checker"]);
    let wrong_world = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes(&guest("wrong-world"))))
    };
    let cached: Vec<String> = std::fs::read_dir(data.join("plugin-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !cached.iter().any(|f| f.starts_with(&wrong_world)),
        "{cached:?}"
    );
    // With a grant the policy allows, the model-calling plugin loads.
    let (s, m) = c
        .upload(
            &alpha,
            "name=judge&grants=model",
            bytes(&guest("wants-model")),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["grants"], json!(["model"]));
    // Quota: three versions stored; a fourth is refused before it is compiled.
    let (s, e) = c
        .upload(&alpha, "name=other", bytes(&guest("bad-score")))
        .await;
    assert_eq!(
        (s.as_u16(), code(&e)),
        (403, "plugin_quota_exceeded"),
        "{e}"
    );

    // Deletes: refused while used, in order otherwise.
    let (s, e) = c.delete(&alpha, "/v1/plugins/checker").await;
    assert_eq!((s.as_u16(), code(&e)), (409, "plugin_in_use"));
    let (s, e) = c.delete(&alpha, "/v1/pipelines/pinned").await;
    assert_eq!((s.as_u16(), code(&e)), (409, "pipeline_in_use"));
    let (s, _) = c.delete(&alpha, "/v1/plugins/judge").await;
    assert_eq!(s, 204);
    let (s, _) = c.delete(&alpha, "/v1/plugins/judge").await;
    assert_eq!(s, 404);

    // Kill -9 right after the 2xx answers: all of it is there after a restart.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, c) = Client::spawn(&config).await;
    let (_, shown) = c.get(&alpha, "/v1/plugins/checker").await;
    assert_eq!(shown["latest"], v2_version.as_str(), "{shown}");
    let (_, list) = c.get(&alpha, "/v1/pipelines").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3, "{list}");
    let (_, _, reply) = c.chat(&alpha, "pinned").await;
    assert_eq!(verifier_of(&reply), format!("checker@{v1_version}"));
    let (s, _) = c.get(&alpha, "/v1/plugins/judge").await;
    assert_eq!(s, 404);
    for p in ["both", "pinned", "checked"] {
        let (s, _) = c.delete(&alpha, &format!("/v1/pipelines/{p}")).await;
        assert_eq!(s, 204, "{p}");
    }
    let (s, _) = c.delete(&alpha, "/v1/plugins/checker").await;
    assert_eq!(s, 204);
    // A narrowed policy holds at once for a stored pipeline, too.
    let (s, _) = c
        .put(
            &beta,
            "/v1/pipelines/wrongly",
            json!({"type": "single", "model": "wrong"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = c
        .patch(
            OPERATOR,
            "/admin/v1/tenants/beta",
            json!({"policy": {"models": ["right"]}}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, e) = c.chat(&beta, "wrongly").await;
    assert_eq!((s.as_u16(), code(&e)), (400, "invalid_pipeline"), "{e}");
    // Deleting a tenant deletes its plugins and pipelines.
    let (s, _) = c.delete(OPERATOR, "/admin/v1/tenants/beta").await;
    assert_eq!(s, 200);
    child.kill().unwrap();
    child.wait().unwrap();

    // A compile that runs out of time is refused as such (here: a limit of 0 s).
    write_config(
        &config,
        &dir.path().join("data2"),
        &mock.base_url,
        "[runtime.compile_limits]\ntimeout = 0\nmemory_mib = 4096",
    );
    let (mut child, c) = Client::spawn(&config).await;
    let gamma = tenant(&c, "gamma", json!({})).await;
    let (s, e) = c.upload(&gamma, "name=slow", trivial.clone()).await;
    assert_eq!((s.as_u16(), code(&e)), (422, "compile_timeout"), "{e}");
    let (_, list) = c.get(&gamma, "/v1/plugins").await;
    assert_eq!(list["data"], json!([]));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_replaced_under_load_fails_no_request() {
    let (_mock, _dir, config, _data) = scratch().await;
    let (mut child, c) = Client::spawn(&config).await;
    let key = tenant(&c, "alpha", json!({})).await;
    let (s, v1) = c
        .upload(&key, "name=checker", bytes(&guest("trivial")))
        .await;
    assert_eq!(s, 201, "{v1}");
    let (s, v2) = c
        .upload(
            &key,
            "name=other",
            bytes(&reference_plugin("gsm8k-verifier")),
        )
        .await;
    assert_eq!(s, 201, "{v2}");
    let trees = [
        json!({"type": "single", "model": "right", "verify": [{"plugin": "checker"}]}),
        json!({"type": "best_of", "models": ["right"], "k": 2, "verify": [{"plugin": "other"}]}),
        json!({"type": "cascade", "steps": [{"type": "single", "model": "wrong", "verify": [{"plugin": "other"}]}, {"type": "pipeline", "name": "shared"}]}),
    ];
    let (s, _) = c.put(&key, "/v1/pipelines/live", trees[0].clone()).await;
    assert_eq!(s, 201);

    let c = std::sync::Arc::new(c);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (c, key, stop) = (c.clone(), key.clone(), stop.clone());
            tokio::spawn(async move {
                let mut served = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (s, _, reply) = c.chat(&key, "live").await;
                    assert_eq!(s, 200, "a request failed during a swap: {reply}");
                    served += 1;
                }
                served
            })
        })
        .collect();
    for round in 0..30 {
        let (s, e) = c
            .put(&key, "/v1/pipelines/live", trees[round % 3].clone())
            .await;
        assert_eq!(s, 200, "{e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = 0;
    for l in load {
        served += l.await.unwrap();
    }
    assert!(served >= 4, "the load ran: {served} requests");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_an_upload_leaves_the_state_before_it() {
    let (_mock, _dir, config, _data) = scratch().await;
    let (mut child, c) = Client::spawn(&config).await;
    let key = tenant(&c, "alpha", json!({})).await;
    let (s, v1) = c
        .upload(&key, "name=checker", bytes(&guest("trivial")))
        .await;
    assert_eq!(s, 201, "{v1}");
    let gsm8k = bytes(&reference_plugin("gsm8k-verifier"));

    // Killed with half the body received.
    let addr = c.url.trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    write!(socket, "{}", upload_head(&addr, &key, gsm8k.len())).unwrap();
    socket.write_all(&gsm8k[..gsm8k.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, mut c) = Client::spawn(&config).await;
    let (_, shown) = c.get(&key, "/v1/plugins/checker").await;
    assert_eq!(shown["versions"].as_array().unwrap().len(), 1, "{shown}");

    // Killed at some point after the whole body was sent (reading, compiling, storing):
    // either the version is there whole and works, or it is not there at all.
    for delay_ms in [5, 50, 300] {
        let addr = c.url.trim_start_matches("http://").to_string();
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        write!(socket, "{}", upload_head(&addr, &key, gsm8k.len())).unwrap();
        socket.write_all(&gsm8k).unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let (next, client) = Client::spawn(&config).await;
        (child, c) = (next, client);
        let (_, shown) = c.get(&key, "/v1/plugins/checker").await;
        let versions = shown["versions"].as_array().unwrap().len();
        assert!(versions == 1 || versions == 2, "{shown}");
        let (s, _) = c
            .put(
                &key,
                "/v1/pipelines/p",
                json!({"type": "single", "model": "right", "verify": [{"plugin": "checker"}]}),
            )
            .await;
        assert!(s == 200 || s == 201);
        let (s, _, reply) = c.chat(&key, "p").await;
        assert_eq!(s, 200, "{reply}");
        if versions == 2 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instances_stay_with_their_tenant() {
    let (_mock, _dir, config, _data) = scratch().await;
    let (mut child, c) = Client::spawn(&config).await;
    // `stateful` counts its calls in instance memory (and claims to be stateless, so
    // its instances are kept warm): a count carried from one tenant to the other would
    // show an instance shared between them.
    let counter = bytes(&guest("stateful"));
    let tree = json!({"type": "single", "model": "right", "verify": [{"plugin": "count"}]});
    let mut counts = Vec::new();
    for name in ["alpha", "beta"] {
        let key = tenant(&c, name, json!({})).await;
        let (s, v) = c
            .upload(&key, "name=count&warm=true", counter.clone())
            .await;
        assert_eq!((s.as_u16(), &v["warm"]), (201, &json!(true)), "{v}");
        let (s, _) = c.put(&key, "/v1/pipelines/counted", tree.clone()).await;
        assert_eq!(s, 201);
        for _ in 0..3 {
            let (s, _, reply) = c.chat(&key, "counted").await;
            assert_eq!(s, 200, "{reply}");
            counts.push(
                reply["arbiter"]["verdicts"][0]["reason"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    // Warm reuse within a tenant (its count rises), none across tenants (beta starts at 1).
    assert_eq!(counts[..3], ["1", "2", "3"], "{counts:?}");
    assert_eq!(counts[3], "1", "{counts:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The same gateway on PostgreSQL (`[store] url`): tenants, keys, plugins, pipelines,
/// traces and usage there, and all of it back after a kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_postgres_keeps_everything_across_a_kill() {
    let Some(url) = crate::common::postgres_database().await else {
        return;
    };
    let (mock, dir, config, data) = scratch().await;
    write_config(
        &config,
        &data,
        &mock.base_url,
        &format!("\n[store]\nurl = \"{url}\""),
    );
    let (mut child, c) = Client::spawn(&config).await;
    let key = tenant(&c, "alpha", json!({})).await;
    let (s, v) = c
        .upload(&key, "name=checker", bytes(&guest("trivial")))
        .await;
    assert_eq!(s, 201, "{v}");
    let tree = json!({"type": "single", "model": "right", "verify": [{"plugin": "checker"}]});
    assert_eq!(c.put(&key, "/v1/pipelines/checked", tree).await.0, 201);
    let (s, _, reply) = c.chat(&key, "checked").await;
    assert_eq!(s, 200, "{reply}");
    let trace = format!(
        "/v1/traces/{}",
        reply["arbiter"]["trace_id"].as_str().unwrap()
    );
    assert_eq!(c.get(&key, &trace).await.0, 200);
    // Nothing went to SQLite.
    assert!(!data.join("traces.db").exists());

    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, c) = Client::spawn(&config).await;
    let (s, t) = c.get(&key, &trace).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["pipeline"], "checked");
    let (_, usage) = c.get(&key, "/v1/usage").await;
    assert!(
        usage["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["pipeline"] == "checked" && r["requests"] == 1),
        "{usage}"
    );
    let (s, _, reply) = c.chat(&key, "checked").await;
    assert_eq!(s, 200, "{reply}");
    assert!(verifier_of(&reply).starts_with("checker@sha256:"));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(dir);
}
