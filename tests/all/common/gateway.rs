//! A real `arbiter serve` child process and a client for its API, as the end-to-end
//! tests of tenancy and tenant uploads drive it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{free_port, wait_ready};

pub const OPERATOR: &str = "sk-operator-test-key";

pub fn start(config: &Path, listen: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", listen, "--operator-key", OPERATOR])
        .env("ARBITER_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting arbiter serve")
}

pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
}

impl Client {
    /// A gateway child on a free port with `config`, ready to answer.
    pub async fn spawn(config: &Path) -> (Child, Client) {
        let listen = format!("127.0.0.1:{}", free_port());
        let c = Client {
            http: reqwest::Client::new(),
            url: format!("http://{listen}"),
        };
        let child = start(config, &listen);
        wait_ready(&c.http, &c.url).await;
        (child, c)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let reply = r.send().await.unwrap();
        let (status, headers) = (reply.status(), reply.headers().clone());
        (status, headers, reply.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(reqwest::Method::GET, key, path, None).await;
        (s, v)
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(reqwest::Method::POST, key, path, Some(body))
            .await;
        (s, v)
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(reqwest::Method::PATCH, key, path, Some(body))
            .await;
        (s, v)
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(reqwest::Method::PUT, key, path, Some(body)).await;
        (s, v)
    }

    /// `POST /v1/plugins?{query}` with the component's bytes.
    pub async fn upload(&self, key: &str, query: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let reply = self
            .http
            .post(format!("{}/v1/plugins?{query}", self.url))
            .bearer_auth(key)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = reply.status();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(reqwest::Method::DELETE, key, path, None).await;
        (s, v)
    }

    pub async fn chat(
        &self,
        key: &str,
        model: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let body = json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "2+2?"}]});
        self.call(
            reqwest::Method::POST,
            key,
            "/v1/chat/completions",
            Some(body),
        )
        .await
    }

    /// Every tenant route the gateway serves (from its OpenAPI document, so a new route
    /// is covered without a change here), called with `key`: each route and what it
    /// answered (status and error code).
    pub async fn every_tenant_route(&self, key: &str) -> Vec<(String, u16, String)> {
        let doc: Value = self
            .http
            .get(format!("{}/openapi.json", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut out = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                if !op["security"].to_string().contains("\"tenant\"") {
                    continue;
                }
                let concrete = path.replace("{id}", "x").replace("{name}", "x");
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = matches!(method, reqwest::Method::POST | reqwest::Method::PUT)
                    .then(|| json!({}));
                let (status, _, e) = self.call(method.clone(), key, &concrete, body).await;
                out.push((
                    format!("{method} {path}"),
                    status.as_u16(),
                    code(&e).to_string(),
                ));
            }
        }
        assert!(out.len() >= 14, "the tenant routes: {out:?}");
        out
    }

    /// The id of `tenant`'s key called `name` (as the operator lists them).
    pub async fn key_id(&self, tenant: &str, name: &str) -> String {
        let (_, keys) = self
            .get(OPERATOR, &format!("/admin/v1/tenants/{tenant}/keys"))
            .await;
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("no key {name} of {tenant}: {keys}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn new_key(&self, tenant: &str, body: Value) -> String {
        let (s, k) = self
            .post(OPERATOR, &format!("/admin/v1/tenants/{tenant}/keys"), body)
            .await;
        assert_eq!(s, 201, "{k}");
        k["key"].as_str().unwrap().to_string()
    }
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}
