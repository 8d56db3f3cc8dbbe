//! Tenancy end to end against a real `arbiter serve` child process: an operator and two
//! tenants; keys created, listed, revoked and expiring; tenants disabled and deleted;
//! policies (raw models, rate, concurrency, daily spend) hit; usage by tenant; and kill -9
//! right after acknowledged changes, which must all be there after a restart.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::gateway::{code, start, Client, OPERATOR};
use crate::common::{mock_upstream, wait_ready};

/// Every tenant route refuses `key` the same way.
async fn refused_everywhere(c: &Client, key: &str, status: u16, want: &str) {
    for (route, s, code) in c.every_tenant_route(key).await {
        assert_eq!((s, code.as_str()), (status, want), "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_tenants_keys_and_policies_that_hold_across_restarts() {
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

# 12 tokens a call at $1000 per million: $0.012 a call.
[models.right]
provider = "mock"
input_price = 1000.0
output_price = 1000.0

[models.slow]
provider = "mock"
upstream = "right@1500"
input_price = 1.0
output_price = 1.0

[pipelines.shared]
tenants = ["*"]
type = "single"
model = "right"

[pipelines.defaults-only]
type = "single"
model = "right"
"#,
            data = dir.path().join("data").display(),
            url = mock.base_url,
        ),
    )
    .unwrap();
    let (mut child, c) = Client::spawn(&config).await;

    // Tenants: alpha may call the raw model `right` and `slow`; beta has the default
    // policy (shared pipelines only).
    let (s, t) = c
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "alpha", "policy": {"models": ["right", "slow"]}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["source"], "store");
    let (s, _) = c
        .post(OPERATOR, "/admin/v1/tenants", json!({"name": "beta"}))
        .await;
    assert_eq!(s, 201);
    let (s, e) = c
        .post(OPERATOR, "/admin/v1/tenants", json!({"name": "beta"}))
        .await;
    assert_eq!((s.as_u16(), code(&e)), (409, "tenant_exists"));
    for (bad, want) in [
        (json!({"name": "Has Spaces"}), "invalid_name"),
        (
            json!({"name": "x", "policy": {"requests_per_second": -1}}),
            "invalid_policy",
        ),
        (json!({"name": "x", "polcy": {}}), "invalid_json"),
    ] {
        let (s, e) = c.post(OPERATOR, "/admin/v1/tenants", bad).await;
        assert_eq!((s.as_u16(), code(&e)), (400, want), "{e}");
    }
    let alpha = c.new_key("alpha", json!({"name": "ci"})).await;
    let beta = c.new_key("beta", json!({})).await;

    // Roles: no key, a tenant key on the admin API, the operator key on /v1.
    let (s, e) = c.get("sk-nobody", "/admin/v1/tenants").await;
    assert_eq!((s.as_u16(), code(&e)), (401, "invalid_api_key"));
    let (s, e) = c.get(&alpha, "/admin/v1/tenants").await;
    assert_eq!((s.as_u16(), code(&e)), (403, "operator_key_required"));
    let (s, _, e) = c.chat(OPERATOR, "shared").await;
    assert_eq!((s.as_u16(), code(&e)), (403, "tenant_key_required"));

    // Keys are listed without the secret.
    let (s, keys) = c.get(OPERATOR, "/admin/v1/tenants/alpha/keys").await;
    assert_eq!(s, 200);
    let listed = &keys["data"][0];
    assert_eq!(listed["name"], "ci");
    assert!(
        listed.get("key").is_none() && listed.get("hash").is_none(),
        "{listed}"
    );
    assert!(alpha.starts_with(listed["prefix"].as_str().unwrap()));

    // What each may call, and what it is told exists.
    assert_eq!(c.chat(&alpha, "right").await.0, 200);
    assert_eq!(c.chat(&beta, "shared").await.0, 200);
    let (s, _, e) = c.chat(&beta, "right").await;
    assert_eq!(
        (s.as_u16(), code(&e)),
        (404, "model_not_found"),
        "no raw models by default"
    );
    let (s, _, e) = c.chat(&beta, "defaults-only").await;
    assert_eq!(
        (s.as_u16(), code(&e)),
        (404, "model_not_found"),
        "a pipeline that does not admit it"
    );
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&c.get(&beta, "/v1/models").await.1), ["shared"]);
    assert_eq!(
        ids(&c.get(&alpha, "/v1/models").await.1),
        ["shared", "right", "slow"]
    );

    // Rate: 1 a second with a burst of 2.
    let (s, _) = c
        .patch(
            OPERATOR,
            "/admin/v1/tenants/beta",
            json!({"policy": {"requests_per_second": 1, "burst": 2}}),
        )
        .await;
    assert_eq!(s, 200);
    let mut refused = None;
    for _ in 0..4 {
        let (s, h, e) = c.chat(&beta, "shared").await;
        if s == 429 {
            refused = Some((h, e));
            break;
        }
    }
    let (h, e) = refused.expect("the rate limit never refused");
    assert_eq!(code(&e), "rate_limit_exceeded", "{e}");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(c.chat(&beta, "shared").await.0, 200, "the rate refills");

    // Concurrency: one at a time for alpha; a second request while a slow one runs.
    let (s, _) = c
        .patch(
            OPERATOR,
            "/admin/v1/tenants/alpha",
            json!({"policy": {"models": ["right", "slow"], "max_concurrent": 1}}),
        )
        .await;
    assert_eq!(s, 200);
    let slow = {
        let (http, url, key) = (c.http.clone(), c.url.clone(), alpha.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "slow", "messages": [{"role": "user", "content": "x"}]}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, h, e) = c.chat(&alpha, "right").await;
    assert_eq!(
        (s.as_u16(), code(&e)),
        (429, "concurrency_limit_exceeded"),
        "{e}"
    );
    assert!(h.contains_key("retry-after"));
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(c.chat(&alpha, "right").await.0, 200, "the slot came back");

    // Daily spend: $0.05 at $0.012 a call. What was spent stays within one call's
    // estimate of the limit.
    let (s, _) = c
        .patch(
            OPERATOR,
            "/admin/v1/tenants/alpha",
            json!({"policy": {"models": ["right"], "daily_spend_usd": 0.05}}),
        )
        .await;
    assert_eq!(s, 200);
    let mut refused = None;
    for _ in 0..20 {
        let (s, h, e) = c.chat(&alpha, "right").await;
        if s != 200 {
            refused = Some((s, h, e));
            break;
        }
    }
    let (s, h, e) = refused.expect("the spend limit never refused");
    assert_eq!((s.as_u16(), code(&e)), (402, "daily_spend_limit"), "{e}");
    assert!(h.contains_key("retry-after"));
    let (s, usage) = c.get(&alpha, "/v1/usage").await;
    assert_eq!(s, 200, "{usage}");
    let rows = usage["data"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["tenant"] == "alpha"), "{usage}");
    let spent: f64 = rows.iter().map(|r| r["cost_usd"].as_f64().unwrap()).sum();
    assert!(spent > 0.03 && spent <= 0.05 + 0.012, "spent {spent}");
    let (_, all) = c.get(OPERATOR, "/admin/v1/usage?tenant=beta").await;
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tenant"] == "beta"),
        "{all}"
    );
    let (s, e) = c.get(&beta, "/v1/usage?tenant=alpha").await;
    assert_eq!(s, 400, "{e}");

    // A key that expires, one revoked; a disabled tenant.
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let expiring = c.new_key("beta", json!({"expires_at": soon})).await;
    let revoked = c.new_key("beta", json!({"name": "to revoke"})).await;
    assert_eq!(c.get(&revoked, "/v1/models").await.0, 200);
    let id = c.key_id("beta", "to revoke").await;
    let (s, _) = c.delete(OPERATOR, &format!("/admin/v1/keys/{id}")).await;
    assert_eq!(s, 200);
    let (s, e) = c.get(&revoked, "/v1/models").await;
    assert_eq!((s.as_u16(), code(&e)), (401, "key_revoked"));
    refused_everywhere(&c, &revoked, 401, "key_revoked").await;
    let (s, _) = c
        .patch(
            OPERATOR,
            "/admin/v1/tenants/beta",
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, e) = c.get(&beta, "/v1/models").await;
    assert_eq!((s.as_u16(), code(&e)), (403, "tenant_disabled"));
    refused_everywhere(&c, &beta, 403, "tenant_disabled").await;

    // kill -9 right after those answers: all of it is there after a restart.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = start(&config, c.url.trim_start_matches("http://"));
    wait_ready(&c.http, &c.url).await;
    let (s, e) = c.get(&revoked, "/v1/models").await;
    assert_eq!((s.as_u16(), code(&e)), (401, "key_revoked"));
    let (s, e) = c.get(&beta, "/v1/models").await;
    assert_eq!((s.as_u16(), code(&e)), (403, "tenant_disabled"));
    let (s, _, e) = c.chat(&alpha, "right").await;
    assert_eq!(
        (s.as_u16(), code(&e)),
        (402, "daily_spend_limit"),
        "spend survives a restart: {e}"
    );
    let (_, t) = c.get(OPERATOR, "/admin/v1/tenants/alpha").await;
    assert_eq!(t["policy"]["daily_spend_usd"], 0.05, "{t}");
    assert!(t["spend"]["today_usd"].as_f64().unwrap() > 0.03, "{t}");
    let (s, _) = c
        .patch(
            OPERATOR,
            "/admin/v1/tenants/beta",
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(c.get(&beta, "/v1/models").await.0, 200, "re-enabled");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, e) = c.get(&expiring, "/v1/models").await;
    assert_eq!((s.as_u16(), code(&e)), (401, "key_expired"));
    refused_everywhere(&c, &expiring, 401, "key_expired").await;
    refused_everywhere(&c, OPERATOR, 403, "tenant_key_required").await;

    // Deleting a tenant: its keys stop working; the name is free again.
    let (s, _) = c.delete(OPERATOR, "/admin/v1/tenants/beta").await;
    assert_eq!(s, 200);
    let (s, e) = c.get(&beta, "/v1/models").await;
    assert_eq!((s.as_u16(), code(&e)), (401, "invalid_api_key"));
    let (s, _) = c.get(OPERATOR, "/admin/v1/tenants/beta").await;
    assert_eq!(s, 404);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn reload_config(path: &Path, data: &Path, mock: &str, p_model: &str, extra: &str) {
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

[models.other]
provider = "mock"
upstream = "right@20"
input_price = 1.0
output_price = 1.0

[pipelines.p]
tenants = ["*"]
type = "single"
model = "{p_model}"
{extra}
"#,
            data = data.display(),
        ),
    )
    .unwrap();
}

/// `POST /admin/v1/reload` and SIGHUP swap the configuration's pipelines while requests
/// run, none failing because of the swap; a broken file is refused with its error and
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_reloads_under_load_and_a_broken_file_changes_nothing() {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("arbiter.toml"), dir.path().join("data"));
    let write =
        |p_model: &str, extra: &str| reload_config(&config, &data, &mock.base_url, p_model, extra);
    let one = "[pipelines.one]\ntenants = [\"*\"]\ntype = \"single\"\nmodel = \"right\"\n";
    let two = "[pipelines.two]\ntenants = [\"*\"]\ntype = \"single\"\nmodel = \"right\"\n";
    write("right", one);
    let (mut child, c) = Client::spawn(&config).await;
    let (s, _) = c
        .post(OPERATOR, "/admin/v1/tenants", json!({"name": "t"}))
        .await;
    assert_eq!(s, 201);
    let key = c.new_key("t", json!({})).await;
    assert_eq!(c.chat(&key, "one").await.0, 200);
    assert_eq!(c.chat(&key, "two").await.0, 404);

    // Load on `p` through every reload below.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, url, key, stop) = (c.http.clone(), c.url.clone(), key.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&json!({"model": "p", "messages": [{"role": "user", "content": "x"}]}))
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => ok += 1,
                    s => failed.push((s, r.text().await.unwrap_or_default())),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    write("other", two);
    let (s, r) = c.post(OPERATOR, "/admin/v1/reload", json!({})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["pipelines"], json!(["p", "two"]));
    assert_eq!(c.chat(&key, "two").await.0, 200);
    assert_eq!(c.chat(&key, "one").await.0, 404);
    let (s, e) = c.post(&key, "/admin/v1/reload", json!({})).await;
    assert_eq!((s.as_u16(), code(&e)), (403, "operator_key_required"));

    // A file that does not validate: refused, and `two` still served.
    write(
        "right",
        "[pipelines.three]\ntype = \"single\"\nmodel = \"nope\"\n",
    );
    let (s, e) = c.post(OPERATOR, "/admin/v1/reload", json!({})).await;
    assert_eq!((s.as_u16(), code(&e)), (400, "invalid_config"), "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown model `nope`"),
        "{e}"
    );
    assert_eq!(c.chat(&key, "two").await.0, 200);
    std::fs::write(&config, "[[[not toml").unwrap();
    let (s, _) = c.post(OPERATOR, "/admin/v1/reload", json!({})).await;
    assert_eq!(s, 400);

    // SIGHUP.
    write("right", one);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut served = false;
    for _ in 0..100 {
        if c.chat(&key, "one").await.0 == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "SIGHUP did not reload");
    assert_eq!(c.chat(&key, "two").await.0, 404);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in load {
        let (ok, failed) = l.await.unwrap();
        assert!(
            failed.is_empty(),
            "requests failed across reloads: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 10, "only {total} requests ran during the reloads");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `arbiter admin` against a running gateway: the lifecycle from the command line, with
/// the server's error codes on failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_drives_a_running_gateway() {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("arbiter.toml"), dir.path().join("data"));
    reload_config(&config, &data, &mock.base_url, "right", "");
    let (mut child, c) = Client::spawn(&config).await;
    let url = c.url.clone();
    let admin = move |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args(["admin", "--url", &url, "--json"])
            .args(args)
            .env("ARBITER_OPERATOR_KEY", OPERATOR)
            .output()
            .unwrap();
        let text = if out.status.success() {
            out.stdout
        } else {
            out.stderr
        };
        (
            out.status.success(),
            serde_json::from_slice::<Value>(&text)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text))),
        )
    };
    let (ok, t) = admin(&[
        "tenant",
        "create",
        "cli-t",
        "--policy",
        r#"{"models": ["right"]}"#,
    ]);
    assert!(ok, "{t}");
    assert_eq!(t["policy"]["models"], json!(["right"]));
    let (ok, k) = admin(&["key", "create", "cli-t", "--name", "laptop"]);
    assert!(ok, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    assert_eq!(c.chat(&key, "right").await.0, 200);
    let (ok, list) = admin(&["key", "list", "cli-t"]);
    assert!(ok && list["data"][0]["name"] == "laptop", "{list}");
    let (ok, _) = admin(&["tenant", "disable", "cli-t"]);
    assert!(ok);
    assert_eq!(c.chat(&key, "right").await.0, 403);
    let (ok, usage) = admin(&["usage", "--tenant", "cli-t"]);
    assert!(ok, "{usage}");
    assert_eq!(
        usage["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["requests"].as_i64().unwrap())
            .sum::<i64>(),
        1,
        "{usage}"
    );
    let (ok, e) = admin(&["tenant", "show", "nope"]);
    assert!(!ok);
    assert_eq!(e["error"]["code"], "tenant_not_found", "{e}");
    let (ok, r) = admin(&["reload"]);
    assert!(ok, "{r}");
    let (ok, _) = admin(&["tenant", "delete", "cli-t"]);
    assert!(ok);
    // The document of every route is served, and is the one kept in the repository.
    let served: Value = c
        .http
        .get(format!("{}/openapi.json", c.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::repo_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, kept);
    child.kill().unwrap();
    child.wait().unwrap();
}
