//! `POST /v1/embeddings` end to end against the mock upstream: the response in both
//! encodings, its cost in the trace, usage and metrics; the tenant's policy and spend
//! limit; pipelines and providers without embeddings refused before any upstream call;
//! an oversized upstream reply refused as a typed error.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::mock_upstream::embedding_of;
use crate::gateway::{Gateway, Options, KEY_A, KEY_B, KEY_C};

impl Gateway {
    async fn embed(&self, key: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/embeddings", self.url))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }
}

fn code(v: &Value) -> (&str, &str) {
    (
        v["error"]["code"].as_str().unwrap_or(""),
        v["error"]["param"].as_str().unwrap_or(""),
    )
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn embeddings_are_priced_traced_and_counted_in_usage() {
    let g = Gateway::start().await;
    let (s, _, r) = g
        .embed(
            KEY_A,
            json!({"model": "embed", "input": ["hello", "world!"]}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["object"].as_str(), r["model"].as_str()),
        (Some("list"), Some("embed"))
    );
    let data = r["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, (item, len)) in data.iter().zip([5, 6]).enumerate() {
        assert_eq!(
            (item["object"].as_str(), item["index"].as_u64()),
            (Some("embedding"), Some(i as u64))
        );
        assert_eq!(floats(&item["embedding"]), embedding_of(len, i, 4));
    }
    // The upstream's count (3 an input), at $1 per million input tokens.
    assert_eq!(r["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
    let cost = r["arbiter"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 6e-6).abs() < 1e-12, "{r}");

    // Base64, asked for: little-endian f32s, as OpenAI encodes them; `dimensions` and
    // token ids reach the upstream.
    let (s, _, b) = g
        .embed(
            KEY_A,
            json!({"model": "embed", "input": [[1, 2, 3]], "encoding_format": "base64", "dimensions": 16}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, embedding_of(3, 0, 16));
    let (s, _, one) = g
        .embed(
            KEY_A,
            json!({"model": "embed", "input": "hi", "encoding_format": "float"}),
        )
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(floats(&one["data"][0]["embedding"]), embedding_of(2, 0, 4));

    // The trace: one attempt at node `embeddings`, with the tokens and cost billed.
    let id = r["arbiter"]["trace_id"].as_str().unwrap();
    let (s, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
    assert_eq!(s, 200, "{trace}");
    assert_eq!(
        (trace["pipeline"].as_str(), trace["outcome"].as_str()),
        (Some("embed"), Some("unverified"))
    );
    let a = &trace["attempts"][0];
    assert_eq!(trace["attempts"].as_array().unwrap().len(), 1, "{trace}");
    assert_eq!(
        (a["node"].as_str(), a["model"].as_str()),
        (Some("embeddings"), Some("embed"))
    );
    assert_eq!(
        (a["input_tokens"].as_u64(), a["output_tokens"].as_u64()),
        (Some(6), Some(0))
    );
    assert!(
        (a["cost_usd"].as_f64().unwrap() - 6e-6).abs() < 1e-12,
        "{a}"
    );
    let (s, _) = g.get(KEY_B, &format!("/v1/traces/{id}")).await;
    assert_eq!(s, 404, "another tenant's trace");

    // Usage per tenant, day and model, as the tenant sees it (the trace read above
    // waited for the writer, so the rows are committed).
    let other = g
        .embed(KEY_A, json!({"model": "embed", "input": "x"}))
        .await
        .2;
    g.get(
        KEY_A,
        &format!(
            "/v1/traces/{}",
            other["arbiter"]["trace_id"].as_str().unwrap()
        ),
    )
    .await;
    let (s, usage) = g.get(KEY_A, "/v1/usage").await;
    assert_eq!(s, 200, "{usage}");
    let row = usage["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "embed")
        .unwrap_or_else(|| panic!("no embed row: {usage}"))
        .clone();
    assert_eq!(
        (row["tenant"].as_str(), row["pipeline"].as_str()),
        (Some("a"), Some("embed"))
    );
    assert_eq!(
        (row["requests"].as_i64(), row["calls"].as_i64()),
        (Some(4), Some(4)),
        "{row}"
    );
    assert_eq!(row["input_tokens"].as_i64(), Some(6 + 3 + 3 + 3), "{row}");
    assert!(row["cost_usd"].as_f64().unwrap() > 1.4e-5, "{row}");

    let metrics = g
        .http
        .get(format!("{}/metrics", g.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"arbiter_model_calls_total{model="embed",outcome="unverified"} 4"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"arbiter_model_cost_usd_total{model="embed"}"#));
}

#[tokio::test]
async fn embeddings_refusals_are_typed_and_never_reach_the_upstream() {
    let g = Gateway::start_changed(Options {
        // Tenant b may call the raw model `right` only.
        config: |c| c.tenants.get_mut("b").unwrap().policy.models = vec!["right".into()],
        ..Options::default()
    })
    .await;
    let cases = [
        // A pipeline the tenant may call is named as one; one it may not does not exist.
        (
            KEY_A,
            json!({"model": "verified", "input": "x"}),
            400,
            ("embeddings_unsupported", "model"),
        ),
        (
            KEY_A,
            json!({"model": "only-b", "input": "x"}),
            404,
            ("model_not_found", ""),
        ),
        (
            KEY_B,
            json!({"model": "embed", "input": "x"}),
            404,
            ("model_not_found", ""),
        ),
        (
            KEY_A,
            json!({"model": "no-such", "input": "x"}),
            404,
            ("model_not_found", ""),
        ),
        // Anthropic has no embeddings API.
        (
            KEY_A,
            json!({"model": "claude-echo", "input": "x"}),
            400,
            ("embeddings_unsupported", "model"),
        ),
        // Fields the gateway does not know, for a provider that does not forward them.
        (
            KEY_A,
            json!({"model": "embed", "input": "x", "top_k": 3}),
            400,
            ("unsupported_parameter", "top_k"),
        ),
        (
            KEY_A,
            json!({"model": "embed", "input": []}),
            400,
            ("invalid_value", "input"),
        ),
        (
            KEY_A,
            json!({"model": "embed", "input": ["a", 1]}),
            400,
            ("invalid_json", "input"),
        ),
        (
            KEY_A,
            json!({"model": "embed", "input": "x", "dimensions": 0}),
            400,
            ("invalid_value", "dimensions"),
        ),
        (
            KEY_A,
            json!({"model": "embed", "input": "x", "encoding_format": "int8"}),
            400,
            ("invalid_value", "encoding_format"),
        ),
        (
            KEY_A,
            json!({"model": "embed", "input": vec!["x"; 2049]}),
            400,
            ("invalid_value", "input"),
        ),
    ];
    for (key, body, status, want) in cases {
        let (s, _, e) = g.embed(key, body.clone()).await;
        assert_eq!((s, code(&e)), (status, want), "{body}: {e}");
    }
    assert_eq!(
        g.mock.state.calls("embed"),
        0,
        "nothing reached the upstream"
    );
    assert_eq!(g.mock.state.calls("echo-request"), 0);
    // A provider set to forward them passes them on.
    let (s, _, r) = g
        .embed(
            KEY_A,
            json!({"model": "embed-open", "input": "x", "top_k": 3}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(g.mock.state.calls("embed"), 1);
    // A wrong key is answered first, whatever the body.
    let (s, _, e) = g.embed("sk-nope", json!({})).await;
    assert_eq!((s, code(&e).0), (401, "invalid_api_key"));
}

#[tokio::test]
async fn a_tenants_spend_limit_refuses_embeddings() {
    let g = Gateway::start_changed(Options {
        // 3 tokens a call at $1000 per million: $0.003 a call, against $0.01 a day.
        config: |c| {
            c.models.get_mut("embed").unwrap().input_price = 1000.0;
            let p = &mut c.tenants.get_mut("c").unwrap().policy;
            p.models = vec!["embed".into()];
            p.daily_spend_usd = Some(0.01);
        },
        ..Options::default()
    })
    .await;
    let mut ok = 0;
    let refused = loop {
        let (s, h, e) = g
            .embed(KEY_C, json!({"model": "embed", "input": "hello"}))
            .await;
        if s != 200 {
            break (s, h, e);
        }
        ok += 1;
        assert!(ok < 10, "the spend limit never refused");
    };
    let (s, h, e) = refused;
    assert_eq!((s, code(&e).0), (402, "daily_spend_limit"), "{e}");
    assert!(h.contains_key("retry-after"));
    assert_eq!(
        ok, 3,
        "$0.009 spent, and the next estimate would pass $0.01"
    );
    assert_eq!(
        g.mock.state.calls("embed"),
        ok,
        "a refused call is never made"
    );
    // The refusal is traced too, as an attempt over budget.
    let id = e["error"]["message"]
        .as_str()
        .unwrap()
        .rsplit("trace ")
        .next()
        .unwrap();
    let (s, trace) = g
        .get(KEY_C, &format!("/v1/traces/{}", id.trim_end_matches(')')))
        .await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(trace["attempts"][0]["outcome"], "over_budget", "{trace}");
}

#[tokio::test]
async fn upstream_failures_are_typed_errors_and_the_gateway_carries_on() {
    let g = Gateway::start().await;
    let (s, _, e) = g
        .embed(KEY_A, json!({"model": "embed-huge", "input": "x"}))
        .await;
    assert_eq!((s, code(&e).0), (502, "upstream_response_too_large"), "{e}");
    assert_eq!(e["error"]["type"], "upstream_error");
    let (s, _, e) = g.embed(KEY_A, json!({"model": "down", "input": "x"})).await;
    assert_eq!((s, code(&e).0), (502, "upstream_error"), "{e}");
    let id = e["error"]["message"]
        .as_str()
        .unwrap()
        .rsplit("trace ")
        .next()
        .unwrap();
    let (s, trace) = g
        .get(KEY_A, &format!("/v1/traces/{}", id.trim_end_matches(')')))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            trace["outcome"].as_str(),
            trace["attempts"][0]["outcome"].as_str()
        ),
        (Some("failed"), Some("failed"))
    );
    assert_eq!(trace["cost_usd"], 0.0, "a failed call is not billed");
    let (s, _, r) = g
        .embed(KEY_A, json!({"model": "embed", "input": "x"}))
        .await;
    assert_eq!(s, 200, "{r}");
}
