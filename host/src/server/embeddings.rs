//! `POST /v1/embeddings`: OpenAI's embeddings, passed through to a raw model the tenant
//! may call, under its spend limits, priced, traced and counted in its usage like any
//! chat model call.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use super::auth::{Admitted, Tenant};
use super::errors::{ApiError, ErrorBody, RawBody};
use super::AppState;
use crate::pipeline::{EmbedRequest, EmbedResult, ExecError};
use crate::providers::embeddings::{to_base64, MAX_DIMENSIONS, MAX_INPUTS};
use crate::providers::{EmbeddingInput, EmbeddingRequest, EncodingFormat};

/// A checked embeddings request.
#[derive(Debug, PartialEq)]
pub struct PreparedEmbeddings {
    /// The model as the caller named it.
    pub model: String,
    /// The call, still under the caller's model name.
    pub call: EmbeddingRequest,
    /// How the vectors go back (the caller's `encoding_format`, float by default).
    pub format: EncodingFormat,
}

/// The request's fields as sent, each read on its own so an error can name its field.
#[derive(Default)]
struct Wire {
    model: Option<String>,
    input: Option<EmbeddingInput>,
    encoding_format: Option<String>,
    dimensions: Option<i64>,
    user: Option<String>,
    extra: BTreeMap<String, Value>,
}

/// Reads the body, noting in `field` which known field is being read, so that a value
/// of the wrong type is reported with its parameter.
struct Fields<'a> {
    field: &'a Cell<Option<&'static str>>,
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Wire;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Wire, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Wire;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
        let mut w = Wire::default();
        while let Some(key) = map.next_key::<String>()? {
            let field = match key.as_str() {
                "model" => "model",
                "input" => "input",
                "encoding_format" => "encoding_format",
                "dimensions" => "dimensions",
                "user" => "user",
                _ => {
                    let value = map.next_value()?;
                    w.extra.insert(key, value);
                    continue;
                }
            };
            self.field.set(Some(field));
            match field {
                "model" => w.model = map.next_value()?,
                "input" => w.input = map.next_value()?,
                "encoding_format" => w.encoding_format = map.next_value()?,
                "dimensions" => w.dimensions = map.next_value()?,
                _ => w.user = map.next_value()?,
            }
            self.field.set(None);
        }
        Ok(w)
    }
}

fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_value", message).with_param(param)
}

/// Checks an embeddings body; every problem is a typed 400 naming its parameter. Pure,
/// so it is tested (and could be fuzzed) on its own.
pub fn prepare(body: &[u8]) -> Result<PreparedEmbeddings, ApiError> {
    let field = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let wire = Fields { field: &field }
        .deserialize(&mut de)
        .and_then(|w| de.end().map(|()| w))
        .map_err(|e| match field.get() {
            Some("input") if e.to_string().contains("inputs in one request") => invalid(
                "input",
                format!("`input`: at most {MAX_INPUTS} inputs in one request"),
            ),
            Some(p) => ApiError::bad_request("invalid_json", format!("`{p}`: {e}")).with_param(p),
            None => ApiError::bad_request("invalid_json", format!("request body: {e}")),
        })?;
    let model = wire
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("model", "`model` is required"))?;
    let input = wire
        .input
        .ok_or_else(|| invalid("input", "`input` is required"))?;
    if input.is_empty() {
        return Err(invalid("input", "`input` must not be empty"));
    }
    let empty = match &input {
        EmbeddingInput::Text(t) => t.is_empty(),
        EmbeddingInput::Texts(t) => t.iter().any(String::is_empty),
        EmbeddingInput::Tokens(_) => false,
        EmbeddingInput::TokenLists(t) => t.iter().any(Vec::is_empty),
    };
    if empty {
        return Err(invalid(
            "input",
            "`input` holds an empty string or token array, which has no embedding",
        ));
    }
    let format = match wire.encoding_format.as_deref() {
        None => None,
        Some("float") => Some(EncodingFormat::Float),
        Some("base64") => Some(EncodingFormat::Base64),
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format!("`encoding_format` must be `float` or `base64`, not `{other}`"),
            ))
        }
    };
    let dimensions = match wire.dimensions {
        None => None,
        Some(d) if (1..=MAX_DIMENSIONS as i64).contains(&d) => Some(d as u32),
        Some(d) => {
            return Err(invalid(
                "dimensions",
                format!("`dimensions` must be between 1 and {MAX_DIMENSIONS}, not {d}"),
            ))
        }
    };
    Ok(PreparedEmbeddings {
        call: EmbeddingRequest {
            model: model.clone(),
            input,
            encoding_format: format,
            dimensions,
            user: wire.user,
            extra: wire.extra,
            timeout: None,
        },
        model,
        format: format.unwrap_or_default(),
    })
}

/// OpenAI's embeddings (https://platform.openai.com/docs/api-reference/embeddings) of a
/// raw model the tenant's policy allows, whose provider is OpenAI-compatible. `input` is
/// a string, an array of up to 2048 strings, an array of token ids or an array of token
/// arrays; `encoding_format` `float` (default) or `base64`; `dimensions` up to 8192. The
/// response adds `arbiter` (trace id, cost, latency).
#[utoipa::path(post, path = "/v1/embeddings", tag = "openai", security(("tenant" = [])),
    request_body(content = Object, description = "OpenAI's embeddings request", content_type = "application/json"),
    params(
        ("x-arbiter-deadline-ms" = Option<u64>, Header, description = "tightens the default deadline"),
        ("x-arbiter-max-cost-usd" = Option<f64>, Header, description = "tightens the default cost budget")),
    responses(
        (status = 200, description = "OpenAI's embeddings list", body = Object),
        (status = 400, description = "`invalid_json`, `invalid_value`, `unsupported_parameter`, `embeddings_unsupported`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`model_not_found`", body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(super) async fn embeddings(
    State(state): State<Arc<AppState>>,
    admitted: Result<Admitted, ApiError>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Response {
    // As for chat: a bad key or a refused limit is answered before the body is read.
    let result = match (admitted, body) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(admitted), Ok(RawBody(body))) => embed(&state, admitted, &headers, body).await,
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            state.metrics.error(&e.code);
            e.into_response()
        }
    }
}

async fn embed(
    state: &Arc<AppState>,
    Admitted(Tenant(who), admission): Admitted,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = who.name().to_string();
    let PreparedEmbeddings {
        model,
        mut call,
        format,
    } = prepare(&body)?;
    let budget = super::header_budget(headers)?;
    let engine = state.engine.load_full();
    let not_embeddings = || {
        ApiError::bad_request(
            "embeddings_unsupported",
            format!("`{model}` is a pipeline; embeddings come from a raw model"),
        )
        .with_param("model")
    };
    // What the tenant may not call does not exist for it (404, as in chat); a pipeline
    // it may call is named as one.
    if state
        .catalogs
        .get(&tenant)
        .is_some_and(|c| c.pipelines.contains_key(&model))
    {
        return Err(not_embeddings());
    }
    if !engine.may_call(&tenant, who.policy(), &model) {
        return Err(ApiError::from(&ExecError::UnknownTarget(model)));
    }
    if engine.pipelines.contains_key(&model) {
        return Err(not_embeddings());
    }
    let entry = engine
        .models
        .get(&model)
        .ok_or_else(|| ApiError::from(&ExecError::UnknownTarget(model.clone())))?;
    if !entry.provider.embeds() {
        return Err(ApiError::bad_request(
            "embeddings_unsupported",
            format!(
                "model `{model}` is served by provider `{}`, which has no embeddings API (OpenAI-compatible providers have one)",
                entry.provider_name
            ),
        )
        .with_param("model"));
    }
    if !call.extra.is_empty()
        && entry.provider.unknown_fields() != crate::providers::UnknownFields::Forward
    {
        let names: Vec<&str> = call.extra.keys().map(String::as_str).collect();
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            format!(
                "unknown parameter `{}`: this gateway passes fields it does not know only to a raw model whose provider is set to forward them (`unknown_fields = \"forward\"`)",
                names.join("`, `")
            ),
        )
        .with_param(names[0].to_string()));
    }
    call.model = model.clone();
    let id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!(
        "request",
        id = %id,
        tenant = %tenant,
        model = %model,
        otel.kind = "server",
    );
    crate::telemetry::set_remote_parent(&span, headers);
    let request = EmbedRequest {
        id,
        tenant,
        model: model.clone(),
        call,
        budget,
        spend: Some(who.spend.clone()),
    };
    let state = state.clone();
    // In a task of its own, as chat runs: a client that goes away does not cut the call
    // short (its input is billed once sent, and nothing more accrues), so its cost and
    // trace are recorded whole. The concurrency slot is held until it ends.
    let task = tokio::spawn(
        async move {
            let _admission = admission;
            let result = engine.embed(request).await;
            let reply = respond(&result, &model, format);
            super::settle(&state, &engine, result.trace).await;
            reply
        }
        .instrument(span),
    );
    task.await
        .map_err(|e| ApiError::internal(format!("the embeddings task failed: {e}")))?
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingObject<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
    arbiter: EmbeddingArbiter<'a>,
}

#[derive(Serialize)]
struct EmbeddingObject<'a> {
    object: &'static str,
    index: usize,
    embedding: Encoded<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Encoded<'a> {
    Float(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
}

#[derive(Serialize)]
struct EmbeddingArbiter<'a> {
    trace_id: &'a str,
    model: &'a str,
    cost_usd: f64,
    latency_ms: f64,
}

/// The response to a finished call: OpenAI's list, or the error with its trace id.
fn respond(
    result: &EmbedResult,
    model: &str,
    format: EncodingFormat,
) -> Result<Response, ApiError> {
    let trace = &result.trace;
    let reply = result.result.as_ref().map_err(|e| {
        let mut api = ApiError::from(e);
        api.message = format!("{} (trace {})", api.message, trace.id);
        api
    })?;
    let data = reply
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| EmbeddingObject {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => Encoded::Float(v),
                EncodingFormat::Base64 => Encoded::Base64(to_base64(v)),
            },
        })
        .collect();
    Ok(axum::Json(EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: reply.input_tokens,
            total_tokens: reply.input_tokens,
        },
        arbiter: EmbeddingArbiter {
            trace_id: &trace.id,
            model,
            cost_usd: trace.cost_usd,
            latency_ms: trace.latency_ms,
        },
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> (String, Option<String>) {
        let e = prepare(body.as_bytes()).expect_err(body);
        assert_eq!(e.status, 400, "{body}");
        (e.code, e.param.map(|p| p.to_string()))
    }

    #[test]
    fn requests_are_read_in_every_shape() {
        let p = prepare(br#"{"model": "m", "input": "hi"}"#).unwrap();
        assert_eq!(p.model, "m");
        assert_eq!(p.call.input, EmbeddingInput::Text("hi".into()));
        assert_eq!(
            (p.format, p.call.encoding_format),
            (EncodingFormat::Float, None)
        );
        let p = prepare(
            br#"{"model": "m", "input": [[1, 2], [3]], "encoding_format": "base64", "dimensions": 256, "user": "u", "top_k": 3}"#,
        )
        .unwrap();
        assert_eq!(
            p.call.input,
            EmbeddingInput::TokenLists(vec![vec![1, 2], vec![3]])
        );
        assert_eq!(p.format, EncodingFormat::Base64);
        assert_eq!(p.call.encoding_format, Some(EncodingFormat::Base64));
        assert_eq!(
            (p.call.dimensions, p.call.user.as_deref()),
            (Some(256), Some("u"))
        );
        assert_eq!(p.call.extra.keys().collect::<Vec<_>>(), ["top_k"]);
        // Nulls are what the SDKs send for parameters left out.
        let p = prepare(
            br#"{"model": "m", "input": ["a", "b"], "encoding_format": null, "dimensions": null, "user": null}"#,
        )
        .unwrap();
        assert_eq!(p.call.input.len(), 2);
        assert_eq!(p.call.dimensions, None);
        let body = serde_json::json!({"model": "m", "input": vec!["x"; MAX_INPUTS]}).to_string();
        assert!(prepare(body.as_bytes()).is_ok());
    }

    #[test]
    fn bad_requests_are_typed_and_name_their_parameter() {
        let param = |p: &str| Some(p.to_string());
        let value = |p: &str| ("invalid_value".to_string(), param(p));
        let json = |p: &str| ("invalid_json".to_string(), param(p));
        assert_eq!(refused(r#"{"input": "x"}"#), value("model"));
        assert_eq!(refused(r#"{"model": "", "input": "x"}"#), value("model"));
        assert_eq!(refused(r#"{"model": "m"}"#), value("input"));
        assert_eq!(refused(r#"{"model": "m", "input": null}"#), value("input"));
        assert_eq!(refused(r#"{"model": "m", "input": ""}"#), value("input"));
        assert_eq!(refused(r#"{"model": "m", "input": []}"#), value("input"));
        assert_eq!(
            refused(r#"{"model": "m", "input": ["a", ""]}"#),
            value("input")
        );
        assert_eq!(
            refused(r#"{"model": "m", "input": [[1], []]}"#),
            value("input")
        );
        let many = serde_json::json!({"model": "m", "input": vec!["x"; MAX_INPUTS + 1]});
        assert_eq!(refused(&many.to_string()), value("input"));
        assert_eq!(refused(r#"{"model": "m", "input": 7}"#), json("input"));
        assert_eq!(
            refused(r#"{"model": "m", "input": ["a", 1]}"#),
            json("input")
        );
        assert_eq!(refused(r#"{"model": "m", "input": [-1]}"#), json("input"));
        assert_eq!(
            refused(r#"{"model": "m", "input": [{"a": 1}]}"#),
            json("input")
        );
        assert_eq!(refused(r#"{"model": 3, "input": "x"}"#), json("model"));
        assert_eq!(
            refused(r#"{"model": "m", "input": "x", "encoding_format": "int8"}"#),
            value("encoding_format")
        );
        assert_eq!(
            refused(r#"{"model": "m", "input": "x", "encoding_format": 1}"#),
            json("encoding_format")
        );
        for d in ["0", "-3", "8193"] {
            let body = format!(r#"{{"model": "m", "input": "x", "dimensions": {d}}}"#);
            assert_eq!(refused(&body), value("dimensions"), "{d}");
        }
        assert_eq!(
            refused(r#"{"model": "m", "input": "x", "dimensions": 1.5}"#),
            json("dimensions")
        );
        assert_eq!(
            refused(r#"{"model": "m", "input": "x", "user": 5}"#),
            json("user")
        );
        assert_eq!(refused("{oops"), ("invalid_json".into(), None));
        assert_eq!(refused(r#"["model"]"#), ("invalid_json".into(), None));
        assert_eq!(
            refused(r#"{"model": "m", "input": "x"} trailing"#),
            ("invalid_json".into(), None)
        );
    }
}
