//! `kill -9` of a real gateway process under load: what it acknowledged as committed
//! (API keys, feedback) is there after a restart. Traces are written behind the answer
//! (the documented window, `docs/architecture.md`), so they are not asserted here.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::common::{free_port, mock_upstream, wait_ready};

const KEY: &str = "sk-crash-test-key";

fn start(config: &Path, listen: &str, api_key: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arbiter"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .args(["--listen", listen])
        .env("ARBITER_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(k) = api_key {
        cmd.args(["--api-key", k]);
    }
    cmd.spawn().expect("starting arbiter serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_acknowledged() {
    let mock = mock_upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
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
output_price = 1.0
"#,
            data = data.display(),
            url = mock.base_url,
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let http = reqwest::Client::new();

    let mut child = start(&config, &listen, Some(KEY));
    wait_ready(&http, &url).await;

    // Clients asking and giving feedback as fast as they can; what got a 200 is kept.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url, acknowledged) = (http.clone(), url.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let body =
                    json!({"model": "right", "messages": [{"role": "user", "content": "2+2?"}]});
                let Ok(r) = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(answer) = r.json::<serde_json::Value>().await else {
                    return;
                };
                let Some(id) = answer["arbiter"]["trace_id"].as_str() else {
                    continue;
                };
                let fb = json!({"request_id": id, "correct": true});
                let Ok(r) = http
                    .post(format!("{url}/v1/feedback"))
                    .bearer_auth(KEY)
                    .json(&fb)
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() == 200 {
                    acknowledged.lock().unwrap().push(id.to_string());
                }
            }
        }));
    }
    // Until some feedback is in, then a while longer, and kill -9 mid-stream.
    for _ in 0..400 {
        if acknowledged.lock().unwrap().len() >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
    }
    let acknowledged: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    assert!(
        acknowledged.len() >= 50,
        "only {} acknowledged",
        acknowledged.len()
    );

    // Every acknowledged feedback is on disk, read as the next process would.
    let db = rusqlite::Connection::open(data.join("traces.db")).unwrap();
    let mut stored = HashSet::new();
    let mut q = db.prepare("SELECT request_id FROM feedback").unwrap();
    for id in q.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        stored.insert(id.unwrap());
    }
    drop(q);
    drop(db);
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged feedback lost", lost.len());

    // The key it acknowledged at start works after a restart that does not give it.
    let mut child = start(&config, &listen, None);
    wait_ready(&http, &url).await;
    let r = http
        .get(format!("{url}/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // And feedback on a request from before the crash is still taken.
    let some = acknowledged.iter().next().unwrap();
    let r = http
        .post(format!("{url}/v1/feedback"))
        .bearer_auth(KEY)
        .json(&json!({"request_id": some, "score": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}
