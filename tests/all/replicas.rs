//! Several gateways on one PostgreSQL database, as a hosted service runs them: what one
//! replica commits (tenants, keys, plugins, pipelines) holds on the others within a
//! second. Each test gets a fresh database on a private PostgreSQL server the tests start
//! (`arbiter::store::test_cluster`); without PostgreSQL binaries they say SKIPPED.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::gateway::{code, Client, OPERATOR};
use crate::common::{guest, mock_upstream};

fn write_config(path: &Path, data: &Path, mock: &str, store: &str) {
    std::fs::write(
        path,
        format!(
            r#"
[server]
data_dir = "{data}"

[store]
url = "{store}"

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

/// Polls `probe` until it holds; how long that took (a failure after `limit`).
async fn within<F, Fut>(limit: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if probe().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(c: &Client, key: &str, path: &str) -> (StatusCode, Value) {
    c.get(key, path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_commits_holds_on_the_other_within_a_second() {
    let Some(url) = tokio::task::spawn_blocking(arbiter::store::test_cluster::fresh_database)
        .await
        .unwrap()
    else {
        eprintln!("SKIPPED: no PostgreSQL to test against");
        return;
    };
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("arbiter.toml");
    write_config(&config, &dir.path().join("data"), &mock.base_url, &url);
    let (mut child_a, a) = Client::spawn(&config).await;
    let (mut child_b, b) = Client::spawn(&config).await;
    let second = Duration::from_secs(1);

    // A tenant and its key made on A work on B.
    let (s, t) = a
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "alpha", "policy": {"models": ["right"]}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let key = a.new_key("alpha", json!({})).await;
    within(second, "a key made on A, on B", || async {
        status(&b, &key, "/v1/models").await.0 == 200
    })
    .await;

    // A plugin uploaded and a pipeline defined on A are called on B.
    let (s, v) = a
        .upload(
            &key,
            "name=checker",
            std::fs::read(guest("trivial")).unwrap(),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let tree = json!({"type": "single", "model": "right", "verify": [{"plugin": "checker"}]});
    assert_eq!(a.put(&key, "/v1/pipelines/checked", tree).await.0, 201);
    within(second, "a pipeline defined on A, on B", || async {
        b.chat(&key, "checked").await.0 == 200
    })
    .await;
    let (_, _, reply) = b.chat(&key, "checked").await;
    assert_eq!(
        reply["arbiter"]["verdicts"][0]["plugin"],
        format!("checker@{}", v["version"].as_str().unwrap()).as_str()
    );
    // Replaced on B, run on A.
    let tree = json!({"type": "single", "model": "right"});
    assert_eq!(b.put(&key, "/v1/pipelines/checked", tree).await.0, 200);
    within(second, "a pipeline replaced on B, on A", || async {
        let (s, _, reply) = a.chat(&key, "checked").await;
        s == 200 && reply["arbiter"]["verdicts"] == json!([])
    })
    .await;

    // A key revoked on B is refused on A; a tenant disabled on A is refused on B.
    let other = a.new_key("alpha", json!({"name": "to revoke"})).await;
    within(second, "the second key, on B", || async {
        status(&b, &other, "/v1/models").await.0 == 200
    })
    .await;
    let id = b.key_id("alpha", "to revoke").await;
    assert_eq!(
        b.delete(OPERATOR, &format!("/admin/v1/keys/{id}")).await.0,
        200
    );
    within(second, "a key revoked on B, on A", || async {
        let (s, e) = status(&a, &other, "/v1/models").await;
        s == 401 && code(&e) == "key_revoked"
    })
    .await;
    let (s, _) = a
        .patch(
            OPERATOR,
            "/admin/v1/tenants/alpha",
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, 200);
    within(second, "a tenant disabled on A, on B", || async {
        let (s, e) = status(&b, &key, "/v1/models").await;
        s == 403 && code(&e) == "tenant_disabled"
    })
    .await;
    // Deleted on B: gone on A, with its plugins.
    assert_eq!(b.delete(OPERATOR, "/admin/v1/tenants/alpha").await.0, 200);
    within(second, "a tenant deleted on B, on A", || async {
        status(&a, &key, "/v1/models").await.0 == 401
    })
    .await;

    for child in [&mut child_a, &mut child_b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Sends chat requests to `c` until `stop`; how many, and every status that was not 200.
fn load(
    c: std::sync::Arc<Client>,
    key: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<u16>)> {
    tokio::spawn(async move {
        let (mut served, mut failed) = (0, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (s, _, _) = c.chat(&key, "right").await;
            match s.as_u16() {
                200 => served += 1,
                other => failed.push(other),
            }
        }
        (served, failed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_survive_a_killed_peer_and_a_database_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some(cluster) = tokio::task::spawn_blocking(arbiter::store::test_cluster::own_cluster)
        .await
        .unwrap()
    else {
        return;
    };
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("arbiter.toml");
    write_config(
        &config,
        &dir.path().join("data"),
        &mock.base_url,
        &cluster.url,
    );
    let (mut child_a, a) = Client::spawn(&config).await;
    let (mut child_b, b) = Client::spawn(&config).await;
    let (s, _) = a
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "alpha", "policy": {"models": ["right"]}}),
        )
        .await;
    assert_eq!(s, 201);
    let key = a.new_key("alpha", json!({})).await;
    let second = Duration::from_secs(1);
    within(second, "the key, on B", || async {
        status(&b, &key, "/v1/models").await.0 == 200
    })
    .await;

    // Kill -9 A under load: B serves every one of its requests meanwhile.
    let b = Arc::new(b);
    let stop = Arc::new(AtomicBool::new(false));
    let on_b = load(b.clone(), key.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    child_a.kill().unwrap();
    child_a.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The database goes away (as a crash would take it): B keeps serving what needs no
    // state change, from what it holds, and says it is not ready.
    cluster.stop().unwrap();
    let down = Instant::now();
    within(
        Duration::from_secs(10),
        "B not ready without its database",
        || async {
            b.http
                .get(format!("{}/readyz", b.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 503)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (served, failed) = on_b.await.unwrap();
    assert!(served > 10, "B served {served}");
    assert!(
        failed.is_empty(),
        "B refused {failed:?} while A died and the database was down"
    );
    let (s, e) = b
        .post(OPERATOR, "/admin/v1/tenants/alpha/keys", json!({}))
        .await;
    assert_eq!(
        s.as_u16(),
        500,
        "a change is refused while the store is down: {e}"
    );
    assert_eq!(code(&e), "store_error");

    // The database comes back: B reconnects and is ready again; A restarts on it; a
    // change made on either reaches the other (its listener reconnected).
    cluster.start().unwrap();
    eprintln!("database down for {:?}", down.elapsed());
    within(Duration::from_secs(15), "B ready again", || async {
        let _ = b.chat(&key, "right").await;
        b.http
            .get(format!("{}/readyz", b.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let (next_a, a) = Client::spawn(&config).await;
    child_a = next_a;
    let later = b
        .new_key("alpha", json!({"name": "after the restart"}))
        .await;
    within(
        Duration::from_secs(3),
        "a key made on B after the restart, on A",
        || async { status(&a, &later, "/v1/models").await.0 == 200 },
    )
    .await;
    let newer = a.new_key("alpha", json!({})).await;
    within(
        Duration::from_secs(3),
        "a key made on A after the restart, on B",
        || async { status(&b, &newer, "/v1/models").await.0 == 200 },
    )
    .await;

    for child in [&mut child_a, &mut child_b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
