//! Several gateways on one PostgreSQL database, as a hosted service runs them: what one
//! replica commits (tenants, keys, plugins, pipelines) holds on the others within a
//! second. Each test gets a fresh database on a private PostgreSQL server the tests start
//! (`arbiter::store::test_cluster`); without PostgreSQL binaries they say SKIPPED.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::gateway::{code, Client, OPERATOR};
use crate::common::{guest, mock_upstream, postgres_database};

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

# 12 tokens a call at $1000 per million: $0.012 a call.
[models.pricey]
provider = "mock"
upstream = "right"
input_price = 1000.0
output_price = 1000.0
"#,
            data = data.display(),
        ),
    )
    .unwrap();
}

/// Two gateways of one configuration on the database at `url`, with their upstream
/// (a mock) and folder, which live as long as the caller keeps them.
async fn two_replicas(
    url: &str,
) -> (
    mock_upstream::MockUpstream,
    tempfile::TempDir,
    (std::process::Child, Client),
    (std::process::Child, Client),
) {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("arbiter.toml");
    write_config(&config, &dir.path().join("data"), &mock.base_url, url);
    let a = Client::spawn(&config).await;
    let b = Client::spawn(&config).await;
    (mock, dir, a, b)
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
    let Some(url) = postgres_database().await else {
        return;
    };
    let (_mock, _dir, (mut child_a, a), (mut child_b, b)) = two_replicas(&url).await;
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
    // A tenant with a spend limit: its calls need the shared counters.
    let policy = json!({"models": ["right"], "daily_spend_usd": 100.0});
    let (s, _) = a
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "limited", "policy": policy}),
        )
        .await;
    assert_eq!(s, 201);
    let limited = a.new_key("limited", json!({})).await;
    let second = Duration::from_secs(1);
    within(second, "the keys, on B", || async {
        status(&b, &key, "/v1/models").await.0 == 200
            && status(&b, &limited, "/v1/models").await.0 == 200
    })
    .await;
    assert_eq!(b.chat(&limited, "right").await.0, 200);

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
    // A call the spend limit must count is refused, typed, rather than made uncounted.
    let (s, _, e) = b.chat(&limited, "right").await;
    assert_eq!(
        (s.as_u16(), code(&e)),
        (503, "spend_limits_unavailable"),
        "{e}"
    );

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
    within(
        Duration::from_secs(5),
        "B's spend counters back",
        || async { b.chat(&limited, "right").await.0 == 200 },
    )
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

/// The value of an unlabelled metric on `c`'s `/metrics`.
async fn metric(c: &Client, name: &str) -> Option<f64> {
    let text = c
        .http
        .get(format!("{}/metrics", c.url))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A tenant's limits hold for the sum over both replicas: its daily spend under load
/// sent to both (never more than one call's estimate over), and its rate, which each
/// replica takes an even share of while both are live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_over_load_spread_on_both_replicas() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let (_mock, _dir, (mut child_a, a), (mut child_b, b)) = two_replicas(&url).await;
    for c in [&a, &b] {
        within(Duration::from_secs(5), "both replicas live", || async {
            metric(c, "arbiter_replicas_live").await == Some(2.0)
        })
        .await;
    }

    // $0.25 a day at an estimate of $0.012 a call: about twenty calls, for the two
    // replicas together (each counting alone would allow about forty).
    let policy = json!({"models": ["pricey"], "daily_spend_usd": 0.25});
    let (s, t) = a
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "spender", "policy": policy}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let key = a.new_key("spender", json!({})).await;
    within(Duration::from_secs(1), "the key, on B", || async {
        status(&b, &key, "/v1/models").await.0 == 200
    })
    .await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    // Four loaders, each alternating between the replicas (two starting on each), so
    // both serve whichever way the race for the last dollars goes.
    let mut load = Vec::new();
    for first in [0, 1, 0, 1] {
        let (replicas, key) = ([a.clone(), b.clone()], key.clone());
        load.push(tokio::spawn(async move {
            let mut served = [0, 0];
            for i in 0..100 {
                let on = (first + i) % 2;
                let (s, _, e) = replicas[on].chat(&key, "pricey").await;
                if s != 200 {
                    return (served, s.as_u16(), code(&e).to_string());
                }
                served[on] += 1;
            }
            (served, 200, "never refused".into())
        }));
    }
    let mut served = [0, 0];
    for task in load {
        let (n, s, code) = task.await.unwrap();
        assert_eq!((s, code.as_str()), (402, "daily_spend_limit"));
        served = [served[0] + n[0], served[1] + n[1]];
    }
    assert!(
        served[0] > 0 && served[1] > 0,
        "both replicas served: {served:?}"
    );
    let usage = || async {
        let (_, usage) = a.get(&key, "/v1/usage").await;
        let rows = usage["data"].as_array().cloned().unwrap_or_default();
        let calls: i64 = rows.iter().map(|r| r["calls"].as_i64().unwrap()).sum();
        let spent: f64 = rows.iter().map(|r| r["cost_usd"].as_f64().unwrap()).sum();
        (calls as usize, spent)
    };
    within(Duration::from_secs(2), "usage recorded", || async {
        usage().await.0 >= served[0] + served[1]
    })
    .await;
    let spent = usage().await.1;

    assert!(
        spent > 0.15 && spent <= 0.25 + 0.012,
        "spent ${spent} over {served:?} calls on A and B"
    );

    // 1 request a second with a burst of 10: 5 on each replica. Ten requests sent to
    // each at once: ten served in all (one more per replica if a token comes back
    // meanwhile), and the rest refused with the configured numbers.
    let policy = json!({"models": ["right"], "requests_per_second": 1, "burst": 10});
    let (s, _) = a
        .post(
            OPERATOR,
            "/admin/v1/tenants",
            json!({"name": "bursty", "policy": policy}),
        )
        .await;
    assert_eq!(s, 201);
    let key = a.new_key("bursty", json!({})).await;
    within(Duration::from_secs(1), "the key, on B", || async {
        status(&b, &key, "/v1/models").await.0 == 200
    })
    .await;
    let burst = [&a, &b]
        .into_iter()
        .flat_map(|c| std::iter::repeat_n(c, 10));
    let replies = futures::future::join_all(burst.map(|c| {
        let (c, key) = (c.clone(), key.clone());
        async move { c.chat(&key, "right").await }
    }))
    .await;
    let ok = replies.iter().filter(|(s, _, _)| *s == 200).count();
    assert!((10..=12).contains(&ok), "{ok} of 20 served");
    for (s, _, e) in replies.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!((s.as_u16(), code(e)), (429, "rate_limit_exceeded"), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("1 requests per second (burst 10)"),
            "{message}"
        );
    }

    // A replica that shuts down cleanly (SIGTERM) takes itself off the live list, so
    // the other takes the whole share at its next heartbeat, not once A's goes stale
    // (3 s without one).
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child_a.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child_a.wait().unwrap().success(), "A shut down cleanly");
    within(Duration::from_secs(2), "B alone, after A left", || async {
        metric(&b, "arbiter_replicas_live").await == Some(1.0)
    })
    .await;

    child_b.kill().unwrap();
    child_b.wait().unwrap();
}
