//! The OpenAI-compatible gateway: `POST /v1/chat/completions` (JSON and SSE),
//! `POST /v1/embeddings`, models, traces, feedback, health, readiness and Prometheus
//! metrics.

mod admin;
pub mod auth;
mod catalog;
mod console;
pub mod embeddings;
pub mod errors;
mod listen;
pub mod metrics;
pub mod openai;
mod stats;
mod traces;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde_json::json;
use tokio_util::sync::{CancellationToken, DropGuard};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::auth::{Admitted, Tenant};
use self::errors::{ApiError, BodyLimit, ErrorBody, RawBody};
use self::metrics::Metrics;
use self::openai::ChatCompletionRequest;
use crate::config::ServerConfig;
use crate::pipeline::{
    Answer, BudgetLimits, Engine, ExecError, ExecRequest, ExecResult, RequestOutcome, RequestTrace,
    Streamed,
};
use crate::runtime::types::{Task, ToolSpec};
use crate::store::{Feedback, TraceStore};

/// Rebuilds the engine from the operator's configuration (the composition root
/// implements it; the server only calls it).
pub trait Reload: Send + Sync {
    fn reload(&self) -> futures::future::BoxFuture<'_, Result<Arc<Engine>, String>>;
}

pub struct AppState {
    /// Swapped whole by a reload: a request keeps the engine it started with.
    pub engine: arc_swap::ArcSwap<Engine>,
    /// How `POST /admin/v1/reload` and SIGHUP rebuild it (unset: reload is refused).
    pub reloader: std::sync::OnceLock<Arc<dyn Reload>>,
    pub store: Arc<TraceStore>,
    pub tenants: crate::tenancy::Tenants,
    /// Tenants' own plugins and pipelines.
    pub catalogs: crate::pipeline::Catalogs,
    /// Loads and compiles tenants' uploads.
    pub runtime: crate::runtime::Runtime,
    /// Uploads being received or compiled at once, all tenants together.
    pub uploads: tokio::sync::Semaphore,
    pub metrics: Metrics,
    pub ready: AtomicBool,
}

pub fn router(state: Arc<AppState>, limits: &ServerConfig) -> Router {
    let max_body_bytes = limits.max_body_bytes;
    let request_timeout = Duration::from_millis(limits.request_timeout_ms);
    let on_panic = {
        let state = state.clone();
        move |panic: Box<dyn std::any::Any + Send>| {
            let message = crate::pipeline::panic_message(&*panic);
            tracing::error!(panic = %message, "a request handler panicked");
            state.metrics.error("internal_error");
            ApiError::internal("the gateway failed on this request; it was logged").into_response()
        }
    };
    let (routes, doc) = api().split_for_parts();
    let doc = Bytes::from(serde_json::to_vec(&finish(doc)).unwrap_or_default());
    routes
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { ([("content-type", "application/json")], doc) }
            }),
        )
        .merge(console::routes())
        .fallback(errors::unknown_route)
        .method_not_allowed_fallback(errors::wrong_method)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(Extension(BodyLimit(max_body_bytes)))
        .layer(Extension(MetricsKey(limits.metrics_key.clone())))
        .layer(axum::middleware::from_fn(move |req, next: Next| {
            within(request_timeout, req, next)
        }))
        .layer(CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

/// Every route but `/openapi.json`, each registered from its handler's `utoipa::path`
/// annotation, so the router and the document cannot disagree.
fn api() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings::embeddings))
        .routes(routes!(models))
        .routes(routes!(model))
        .routes(routes!(traces::list_traces))
        .routes(routes!(trace))
        .routes(routes!(feedback))
        .routes(routes!(admin::tenant_usage))
        .routes(routes!(admin::own_tenant))
        .routes(routes!(stats::pipeline_stats))
        .routes(routes!(stats::model_stats))
        .routes(routes!(stats::plugin_stats))
        .merge(catalog::routes())
        .nest(
            "/admin/v1",
            admin::routes()
                .merge(traces::admin_routes())
                .merge(stats::admin_routes())
                .routes(routes!(tenant_models)),
        )
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Arbiter",
        description = "OpenAI-compatible gateway whose verifiers, routers and decomposers are sandboxed WebAssembly plugins; tenant API (`/v1`) and operator API (`/admin/v1`). Errors: docs/gateway-errors.md."
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "openai", description = "OpenAI-compatible routes (tenant keys)"),
        (name = "tenant", description = "Arbiter's own tenant routes (tenant keys)"),
        (name = "admin", description = "The operator's API (operator keys)"),
        (name = "ops", description = "Health, readiness and metrics")
    )
)]
struct ApiDoc;

/// Both kinds of key are bearer tokens; the document names them apart.
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("tenant", "a tenant's API key"),
            ("operator", "an operator key"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// The document as served: axum's catch-all segment (`{*id}`) is OpenAPI's plain
/// parameter, and the version is the binary's.
fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

/// The OpenAPI document of every route (what `GET /openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    finish(api().split_for_parts().1)
}

/// Rebuilds the engine and swaps it in; requests in flight finish on the one they
/// started with. Returns the pipelines now served.
pub async fn reload(state: &AppState) -> Result<Vec<String>, ApiError> {
    let reloader = state.reloader.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "reload_unavailable",
            "this gateway was not started from a configuration it can reload",
        )
    })?;
    match reloader.reload().await {
        Ok(engine) => {
            let names = engine.pipelines.keys().cloned().collect();
            state.engine.store(engine);
            tracing::info!("configuration reloaded");
            Ok(names)
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration reload refused; the running one stays");
            Err(ApiError::bad_request(
                "invalid_config",
                format!("the configuration was not reloaded: {e}"),
            ))
        }
    }
}

/// Bounds the time to a response's head (`server.request_timeout_ms`).
async fn within(limit: Duration, req: axum::extract::Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            "request_timeout",
            format!(
                "no response within this gateway's limit of {} ms (server.request_timeout_ms)",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// The hash of the key `/metrics` requires, if any.
#[derive(Clone)]
struct MetricsKey(Option<String>);

/// Choices one request may ask for (`n`): each is a paid answer.
const MAX_N: u32 = 16;

/// Tags per request, as OpenAI bounds `metadata` (16 pairs): each is statistics kept per
/// model and stored with the trace, so a request cannot bring thousands.
const MAX_TAGS: usize = 16;
const MAX_TAG_BYTES: usize = 64;

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn header_num<T: std::str::FromStr>(
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_header",
                    format!("header `{name}` must be a number"),
                )
            }),
    }
}

/// Budget from `x-arbiter-*` headers (they can only tighten the pipeline's own).
fn header_budget(headers: &HeaderMap) -> Result<BudgetLimits, ApiError> {
    let max_cost_usd = header_num(headers, "x-arbiter-max-cost-usd")?;
    if max_cost_usd.is_some_and(|usd| !crate::pipeline::budget::valid_cost(usd)) {
        return Err(ApiError::bad_request(
            "invalid_header",
            "header `x-arbiter-max-cost-usd` must be a finite amount >= 0",
        ));
    }
    Ok(BudgetLimits {
        deadline_ms: header_num(headers, "x-arbiter-deadline-ms")?,
        max_cost_usd,
        max_calls: header_num(headers, "x-arbiter-max-calls")?,
        max_depth: header_num(headers, "x-arbiter-max-depth")?,
    })
}

/// OpenAI's chat completions, JSON or server-sent events (`stream: true`), run through
/// the pipeline `model` names (or a raw model the tenant's policy allows). The request
/// and response are OpenAI's (https://platform.openai.com/docs/api-reference/chat),
/// plus `arbiter` (budget, tags) in the request and `arbiter` (model, candidates,
/// verdicts, cost, trace id) in the response.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", security(("tenant" = [])),
    request_body(content = Object, description = "OpenAI's chat completion request", content_type = "application/json"),
    params(
        ("x-arbiter-deadline-ms" = Option<u64>, Header, description = "tightens the pipeline's deadline"),
        ("x-arbiter-max-cost-usd" = Option<f64>, Header, description = "tightens the cost budget"),
        ("x-arbiter-max-calls" = Option<u32>, Header, description = "tightens the model-call budget"),
        ("x-arbiter-max-depth" = Option<u32>, Header, description = "tightens the decomposition depth"),
        ("x-arbiter-tags" = Option<String>, Header, description = "comma-separated tags")),
    responses(
        (status = 200, description = "OpenAI's chat completion (or its SSE chunks)", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn chat_completions(
    State(state): State<Arc<AppState>>,
    admitted: Result<Admitted, ApiError>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Response {
    // A bad key or a refused limit is answered first: only an admitted tenant's body is
    // looked at.
    let result = match (admitted, body) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(admitted), Ok(RawBody(body))) => chat(&state, admitted, &headers, body).await,
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            state.metrics.error(&e.code);
            e.into_response()
        }
    }
}

/// A chat request as the engine takes it, with what the response needs besides.
pub struct Prepared {
    pub exec: ExecRequest,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The model as the caller named it.
    pub model: String,
}

/// Checks and converts a chat-completions body and its headers; every problem is a typed
/// 400. Pure, so the fuzz target `openai_request` drives exactly this.
pub fn prepare(tenant: String, headers: &HeaderMap, body: &[u8]) -> Result<Prepared, ApiError> {
    let mut request: ChatCompletionRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
    if request.messages.is_empty() {
        return Err(
            ApiError::bad_request("invalid_messages", "`messages` must not be empty")
                .with_param("messages"),
        );
    }
    let n = request.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("`n` must be between 1 and {MAX_N}, not {n}"),
        )
        .with_param("n"));
    }
    let mut sampling = request.take_sampling()?;
    sampling.extra = openai::unknown_fields(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
    let messages = std::mem::take(&mut request.messages)
        .into_iter()
        .map(|m| m.into_message())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| ApiError::bad_request("invalid_messages", m).with_param("messages"))?;
    let options = request.arbiter.unwrap_or_default();
    let mut metadata = request.metadata.unwrap_or_default();
    metadata.extend(options.metadata);
    let mut tags = options.tags;
    if let Some(h) = headers.get("x-arbiter-tags").and_then(|v| v.to_str().ok()) {
        tags.extend(
            h.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        );
    }
    if tags.len() > MAX_TAGS || tags.iter().any(|t| t.len() > MAX_TAG_BYTES) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("at most {MAX_TAGS} tags of at most {MAX_TAG_BYTES} bytes each (body and `x-arbiter-tags` together)"),
        )
        .with_param("tags"));
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    let task = Task {
        id: id.clone(),
        messages,
        tags,
        metadata,
        tools: ToolSpec::from_openai(sampling.tools.as_deref().unwrap_or_default()),
    };
    let budget = options.budget.tightened_by(header_budget(headers)?);
    let exec = ExecRequest {
        id,
        tenant: tenant.clone(),
        target: request.model.clone(),
        task,
        budget,
        sampling,
        n,
        spend: None,
        catalog: None,
    };
    Ok(Prepared {
        exec,
        stream: request.stream,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
        model: request.model,
    })
}

async fn chat(
    state: &Arc<AppState>,
    Admitted(Tenant(who), admission): Admitted,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = who.name().to_string();
    let Prepared {
        mut exec,
        stream,
        include_usage,
        model,
    } = prepare(tenant.clone(), headers, &body)?;
    // What the tenant may not call does not exist for it (a 404 like any unknown name),
    // so names of pipelines it was not given do not leak.
    let engine = state.engine.load_full();
    let catalog = state.catalogs.get(&tenant);
    match catalog
        .as_ref()
        .and_then(|c| Some((c, c.pipelines.get(&exec.target)?)))
    {
        // The tenant's own pipeline, checked against its policy as it is now.
        Some((c, p)) => crate::pipeline::catalog::check_references(
            &engine,
            c,
            &tenant,
            who.policy(),
            &exec.target,
            &p.def,
        )
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_pipeline",
                format!("pipeline `{}` cannot run: {e}", exec.target),
            )
        })?,
        None if !engine.may_call(&tenant, who.policy(), &exec.target) => {
            return Err(ApiError::from(&ExecError::UnknownTarget(exec.target)));
        }
        None => {}
    }
    if exec.n > 1 && !engine.answers_n(catalog.as_deref(), &exec.target) {
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            format!(
                "`n` > 1: pipeline `{}` chooses one answer; several come from a raw model, an unverified single-model pipeline or a best_of pipeline (its top n)",
                exec.target
            ),
        )
        .with_param("n"));
    }
    if exec.sampling.tools.as_ref().is_some_and(|t| !t.is_empty())
        && engine.composes(catalog.as_deref(), &exec.target)
    {
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            format!(
                "`tools`: pipeline `{}` composes its answer from sub-tasks' text, which would drop tool calls",
                exec.target
            ),
        )
        .with_param("tools"));
    }
    // Fields the gateway does not know go only to a raw model whose provider forwards
    // them; anywhere else they are refused by name, never dropped.
    if !exec.sampling.extra.is_empty()
        && !engine.forwards_unknown_fields(catalog.as_deref(), &exec.target)
    {
        let names: Vec<&str> = exec.sampling.extra.keys().map(String::as_str).collect();
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            format!(
                "unknown parameter `{}`: this gateway passes fields it does not know only to a raw model whose provider is set to forward them (`unknown_fields = \"forward\"`)",
                names.join("`, `")
            ),
        )
        .with_param(names[0].to_string()));
    }
    exec.spend = Some(who.spend.clone());
    exec.catalog = catalog;
    // Everything the request causes (model calls, plugin calls and their log lines) is
    // logged in this span, so one id ties a request's lines together and to its trace.
    let span = tracing::info_span!(
        "request",
        id = %exec.id,
        tenant = %tenant,
        model = %model,
        otel.kind = "server",
    );
    // With span export on, the request joins the caller's trace (`traceparent`).
    crate::telemetry::set_remote_parent(&span, headers);
    // The pipeline runs in a task of its own: when the client goes away, hyper drops this
    // handler (or, once streaming, the response body), which cancels the pipeline (its
    // in-flight calls are dropped, so nothing more is paid for) while the task still
    // records what was done.
    let cancel = CancellationToken::new();
    let cancel_when_dropped = cancel.clone().drop_guard();
    // Several choices are streamed whole once the call returns: the upstream's own
    // interleaved deltas are not passed through (yet).
    let (sink, deltas) = match stream && exec.n == 1 {
        true => {
            let (tx, rx) = tokio::sync::mpsc::channel(32);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let head = Head {
        created: now_s(),
        model,
        include_usage,
    };
    // Deltas are framed as they arrive, the rest once the task is done.
    let deltas = deltas.map(|rx| (rx, format!("chatcmpl-{}", exec.id), head.clone()));
    let state = state.clone();
    let task = tokio::spawn(
        async move {
            // The tenant's concurrency slot is held until the pipeline (and its stream)
            // is done.
            let _admission = admission;
            let result = engine
                .execute_until(exec, cancel.cancelled_owned(), sink)
                .await;
            let reply = reply(&result, stream, &head);
            settle(&state, &engine, result.trace).await;
            reply
        }
        .instrument(span),
    );
    // A pass-through answer is streamed as the upstream generates it: the status goes
    // out once the upstream has accepted the call. Anything else (a verified answer, a
    // refusal) is known whole when the task ends.
    if let Some((mut deltas, id, head)) = deltas {
        if deltas.recv().await.is_some() {
            return Ok(sse_response(Body::from_stream(passthrough(
                deltas,
                id,
                head,
                task,
                cancel_when_dropped,
            ))));
        }
    }
    match task.await {
        Ok(Reply::Whole(response)) => response,
        Ok(Reply::Tail(_)) => Err(ApiError::internal(
            "the answer was streamed, but the stream never opened",
        )),
        Err(e) => Err(ApiError::internal(format!("the pipeline task failed: {e}"))),
    }
}

/// What a response says besides the answer: the model as the caller named it, and
/// when.
#[derive(Clone)]
struct Head {
    created: i64,
    model: String,
    /// `stream_options.include_usage`.
    include_usage: bool,
}

impl Head {
    /// How the stream `id` ends: the finish chunk, then the usage chunk if it was asked
    /// for (the `arbiter` object rides on the last chunk), then `[DONE]`.
    fn end(&self, id: &str, trace: &RequestTrace) -> Vec<u8> {
        let finish = openai::delta(None, false, Some(openai::finish_reason(trace)));
        self.end_with(id, trace, vec![finish])
    }

    /// The ending with one finish chunk per choice (`n` > 1 has several); the `arbiter`
    /// object rides on the last of them unless a usage chunk follows.
    fn end_with(
        &self,
        id: &str,
        trace: &RequestTrace,
        finishes: Vec<openai::ChunkChoice>,
    ) -> Vec<u8> {
        let head = self.chunks(id);
        let mut out = Vec::new();
        let last = finishes.len().saturating_sub(1);
        for (i, finish) in finishes.into_iter().enumerate() {
            let arbiter = (i == last && !self.include_usage).then(|| openai::arbiter_object(trace));
            out.extend_from_slice(&openai::sse(&head.chunk(finish, None, arbiter)));
        }
        if self.include_usage {
            out.extend_from_slice(&openai::sse(&head.usage_chunk(trace)));
        }
        out.extend_from_slice(openai::DONE);
        out
    }

    /// What repeats in every chunk of the stream `id`.
    fn chunks<'a>(&'a self, id: &'a str) -> openai::StreamHead<'a> {
        openai::StreamHead {
            id,
            created: self.created,
            model: &self.model,
        }
    }
}

/// The response to a finished request.
enum Reply {
    /// The whole response.
    Whole(Result<Response, ApiError>),
    /// The end of a response already streaming: the final chunk (usage and the
    /// `arbiter` object) and `[DONE]`, or an error frame.
    Tail(Bytes),
}

fn reply(result: &ExecResult, stream: bool, head: &Head) -> Reply {
    let trace = &result.trace;
    let error = || {
        let mut api = match &result.error {
            Some(e) => ApiError::from(e),
            None => ApiError::internal("the pipeline returned neither an answer nor an error"),
        };
        api.message = format!("{} (trace {})", api.message, trace.id);
        api
    };
    match (&result.answer, result.streamed) {
        (Some(_), true) => {
            let id = format!("chatcmpl-{}", trace.id);
            Reply::Tail(head.end(&id, trace).into())
        }
        // Broken after the status went out: the error can only be a frame.
        (None, true) => Reply::Tail(Bytes::from(format!("data: {}\n\n", error().body()))),
        (Some(answer), false) if stream => Reply::Whole(Ok(stream_answer(trace, answer, head))),
        (Some(answer), false) => Reply::Whole(Ok(axum::Json(openai::completion(
            trace,
            answer,
            &head.model,
            head.created,
        ))
        .into_response())),
        (None, false) => Reply::Whole(Err(error())),
    }
}

/// The body of a pass-through stream: each delta as a chunk as it arrives, then the
/// ending the pipeline task returns. Dropping it (the client went away) cancels the
/// pipeline.
fn passthrough(
    deltas: tokio::sync::mpsc::Receiver<Streamed>,
    id: String,
    head: Head,
    task: tokio::task::JoinHandle<Reply>,
    cancel_when_dropped: DropGuard,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    struct Passthrough {
        deltas: tokio::sync::mpsc::Receiver<Streamed>,
        id: String,
        head: Head,
        task: Option<tokio::task::JoinHandle<Reply>>,
        role_sent: bool,
        _cancel: DropGuard,
    }
    let body = Passthrough {
        deltas,
        id,
        head,
        task: Some(task),
        role_sent: false,
        _cancel: cancel_when_dropped,
    };
    futures::stream::unfold(body, |mut b| async move {
        while let Some(event) = b.deltas.recv().await {
            let choice = match &event {
                Streamed::Opened => continue,
                Streamed::Delta(d) => openai::delta(Some(d), false, None),
                Streamed::ToolCall(t) => openai::delta(None, false, None)
                    .with_tool_calls(vec![openai::ToolCallPiece::of(t)]),
                Streamed::Logprobs(l) => openai::delta(None, false, None).with_logprobs(Some(l)),
            };
            // The first chunk names the role.
            let choice = choice.with_role(!std::mem::replace(&mut b.role_sent, true));
            let frame = openai::sse(&b.head.chunks(&b.id).chunk(choice, None, None));
            return Some((Ok(frame), b));
        }
        let tail = match b.task.take()?.await {
            Ok(Reply::Tail(tail)) => tail,
            Ok(Reply::Whole(_)) | Err(_) => Bytes::from(format!(
                "data: {}\n\n",
                ApiError::internal("the pipeline task failed").body()
            )),
        };
        Some((Ok(tail), b))
    })
}

/// The end of every request: metrics, one log line, and the trace to the store (waiting
/// for room in its queue when the disk is behind).
async fn settle(state: &AppState, engine: &Engine, trace: RequestTrace) {
    state
        .metrics
        .observe(&trace, metric_label(engine, &trace.pipeline));
    match trace.outcome {
        RequestOutcome::Failed => tracing::info!(
            latency_ms = trace.latency_ms,
            cost_usd = trace.cost_usd,
            attempts = trace.attempts.len(),
            error = trace.error.as_deref().unwrap_or(""),
            "request failed"
        ),
        outcome => tracing::info!(
            ?outcome,
            model = trace.model.as_deref().unwrap_or(""),
            latency_ms = trace.latency_ms,
            cost_usd = trace.cost_usd,
            attempts = trace.attempts.len(),
            "request finished"
        ),
    }
    if let Err(e) = state.store.record(trace).await {
        tracing::error!(error = %e, "could not queue the trace");
    }
}

/// Bounded label set for metrics: configured pipelines and models, else `other`.
fn metric_label<'a>(engine: &'a Engine, target: &'a str) -> &'a str {
    if engine.pipelines.contains_key(target) || engine.models.contains_key(target) {
        target
    } else {
        "other"
    }
}

fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

/// A chosen answer, streamed whole (verification needs the whole answer, so the stream
/// starts when the answer is final): per choice, the role, the text (with its
/// log-probabilities) and the tool calls, then each choice's finish and the ending. With
/// `n` > 1 the choices follow one another, each under its own `index`.
fn stream_answer(trace: &RequestTrace, answer: &Answer, head: &Head) -> Response {
    let id = format!("chatcmpl-{}", trace.id);
    let chunks = head.chunks(&id);
    let mut frames: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    let mut finishes = Vec::new();
    let several = !answer.alternatives.is_empty();
    for (index, choice) in std::iter::once(answer)
        .chain(&answer.alternatives)
        .enumerate()
    {
        let index = index as u32;
        frames.push(Ok(openai::sse(&chunks.chunk(
            openai::delta(None, true, None).with_index(index),
            None,
            None,
        ))));
        if !choice.text.is_empty() || choice.tool_calls.is_empty() {
            frames.push(Ok(openai::sse(
                &chunks.chunk(
                    openai::delta(Some(&choice.text), false, None)
                        .with_logprobs(choice.logprobs.as_ref())
                        .with_index(index),
                    None,
                    None,
                ),
            )));
        }
        if !choice.tool_calls.is_empty() {
            let pieces = choice
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| openai::ToolCallPiece::whole(i, c))
                .collect();
            frames.push(Ok(openai::sse(
                &chunks.chunk(
                    openai::delta(None, false, None)
                        .with_tool_calls(pieces)
                        .with_index(index),
                    None,
                    None,
                ),
            )));
        }
        // One choice ends as the request did; each of several with its own reason.
        let reason = match (several, choice.finish_reason.as_deref()) {
            (true, Some(r)) => r,
            _ => openai::finish_reason(trace),
        };
        finishes.push(openai::delta(None, false, Some(reason)).with_index(index));
    }
    frames.push(Ok(head.end_with(&id, trace, finishes).into()));
    sse_response(Body::from_stream(futures::stream::iter(frames)))
}

/// The pipelines and raw models this key may call.
#[utoipa::path(get, path = "/v1/models", tag = "openai", security(("tenant" = [])),
    responses((status = 200, description = "OpenAI's model list; each entry's `arbiter.kind` is `pipeline` or `model`, and a pipeline's `arbiter.definition` is its strategy tree (a shared one without plugin settings)", body = Object),
        (status = 401, body = ErrorBody)))]
async fn models(State(state): State<Arc<AppState>>, tenant: Tenant) -> Result<Response, ApiError> {
    let created = now_s();
    let data: Vec<_> = targets(&state, &tenant)
        .into_iter()
        .map(|t| model_object(t, created))
        .collect();
    Ok(axum::Json(json!({ "object": "list", "data": data })).into_response())
}

/// What a tenant may call, as `GET /v1/models` lists it to the tenant (with each
/// pipeline's strategy tree).
#[utoipa::path(get, path = "/tenants/{name}/models", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 200, description = "OpenAI's model list, as `GET /v1/models`", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody)))]
async fn tenant_models(
    State(state): State<Arc<AppState>>,
    _: auth::Operator,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let tenant =
        state.tenants.tenant(&name).map(Tenant).ok_or_else(|| {
            ApiError::not_found("tenant_not_found", format!("no tenant `{name}`"))
        })?;
    let created = now_s();
    let data: Vec<_> = targets(&state, &tenant)
        .into_iter()
        .map(|t| model_object(t, created))
        .collect();
    Ok(axum::Json(json!({ "object": "list", "data": data })).into_response())
}

/// What a tenant may call, as `/v1/models` lists it.
struct Target {
    id: String,
    kind: &'static str,
    owner: String,
    description: String,
    /// A pipeline's strategy tree: an own one as the tenant sent it, a shared one as
    /// [`shared_tree`] shows it.
    definition: Option<serde_json::Value>,
}

/// A shared pipeline's strategy tree as a tenant may see it: strategies, models and
/// plugins, without the plugins' settings (the operator's, which may hold credentials)
/// or the tenants it serves (other tenants' names).
fn shared_tree(def: &crate::pipeline::PipelineDef) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("config");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut tree = serde_json::to_value(&def.node).unwrap_or_default();
    strip(&mut tree);
    tree
}

/// The tenant's own pipelines, then the shared pipelines and raw models it may call
/// (an own pipeline hides a shared name).
fn targets(state: &AppState, tenant: &Tenant) -> Vec<Target> {
    let engine = state.engine.load();
    let mut out: Vec<Target> = Vec::new();
    if let Some(c) = state.catalogs.get(tenant.name()) {
        out.extend(c.pipelines.iter().map(|(id, p)| Target {
            id: id.clone(),
            kind: "pipeline",
            owner: tenant.name().to_string(),
            description: p.def.description.clone(),
            definition: Some(p.source.clone()),
        }));
    }
    let shared = engine.targets_of(tenant.name(), tenant.0.policy());
    for (id, kind) in shared {
        if out.iter().any(|t| t.id == id) {
            continue;
        }
        let shared = engine.pipelines.get(&id);
        out.push(Target {
            description: shared.map(|p| p.description.clone()).unwrap_or_default(),
            definition: shared.map(shared_tree),
            id,
            kind,
            owner: "arbiter".into(),
        });
    }
    out
}

/// One of the tenant's targets (the SDKs' `models.retrieve`); names may hold slashes.
#[utoipa::path(get, path = "/v1/models/{*id}", tag = "openai", security(("tenant" = [])),
    params(("id" = String, Path, description = "a pipeline or model name")),
    responses((status = 200, body = Object), (status = 404, description = "`model_not_found`", body = ErrorBody)))]
async fn model(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let target = targets(&state, &tenant)
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| {
            ApiError::not_found("model_not_found", format!("no model or pipeline `{id}`"))
        })?;
    Ok(axum::Json(model_object(target, now_s())).into_response())
}

fn model_object(t: Target, created: i64) -> serde_json::Value {
    let mut arbiter = json!({ "kind": t.kind, "description": t.description });
    if let Some(d) = t.definition {
        arbiter["definition"] = d;
    }
    json!({ "id": t.id, "object": "model", "created": created, "owned_by": t.owner, "arbiter": arbiter })
}

/// A request's trace: every attempt, with timings, tokens, cost and verdicts.
#[utoipa::path(get, path = "/v1/traces/{id}", tag = "tenant", security(("tenant" = [])),
    params(("id" = String, Path, description = "the trace id (`arbiter.trace_id` of a response)")),
    responses((status = 200, description = "the trace (`RequestTrace`, docs/architecture.md)", body = Object),
        (status = 404, description = "`trace_not_found`", body = ErrorBody)))]
async fn trace(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    read_trace(&state, tenant.name(), &id).await
}

/// `tenant`'s trace `id`; another tenant's is not found.
async fn read_trace(state: &AppState, tenant: &str, id: &str) -> Result<Response, ApiError> {
    match state.store.trace(tenant, id).await {
        Ok(Some(t)) => Ok(axum::Json(t).into_response()),
        Ok(None) => Err(ApiError::not_found(
            "trace_not_found",
            format!("no trace `{id}`"),
        )),
        Err(e) => Err(store_failed("reading a trace", &e)),
    }
}

/// A verdict on one of the tenant's requests: its routers learn from it.
#[utoipa::path(post, path = "/v1/feedback", tag = "tenant", security(("tenant" = [])), request_body = Feedback,
    responses((status = 200, description = "`{\"ok\": true}`, once committed", body = Object),
        (status = 400, description = "`invalid_json`, `invalid_feedback`", body = ErrorBody),
        (status = 404, description = "`trace_not_found`", body = ErrorBody)))]
async fn feedback(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let tenant = tenant.name();
    let fb: Feedback = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("feedback: {e}")))?;
    if fb.correct.is_none() && fb.score.is_none() && fb.note.is_none() {
        return Err(ApiError::bad_request(
            "invalid_feedback",
            "give at least one of `correct`, `score`, `note`",
        ));
    }
    if fb.score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
        return Err(ApiError::bad_request(
            "invalid_feedback",
            "`score` must be in [0, 1]",
        ));
    }
    match state.store.feedback(tenant, fb).await {
        Ok(true) => Ok(axum::Json(json!({ "ok": true })).into_response()),
        Ok(false) => Err(ApiError::not_found("trace_not_found", "no such request")),
        Err(e) => Err(store_failed("recording feedback", &e)),
    }
}

/// A store error, logged whole for the operator; the tenant learns only that it failed
/// (its text names files and SQL).
fn store_failed(doing: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{doing} failed");
    let mut api = ApiError::internal(format!(
        "{doing} failed in the gateway's store; it was logged"
    ));
    api.code = "store_error".into();
    api
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "`ok`", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready to serve: the store takes writes.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "`ready`", body = String), (status = 503, description = "`not ready`", body = String)))]
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let store_ok = tokio::time::timeout(Duration::from_secs(2), state.store.flush())
        .await
        .is_ok_and(|r| r.is_ok());
    if state.ready.load(Ordering::Relaxed) && store_ok {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// Prometheus metrics (a key is required when `server.metrics_key` is set).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String), (status = 401, body = ErrorBody)))]
async fn metrics_text(
    State(state): State<Arc<AppState>>,
    Extension(MetricsKey(key)): Extension<MetricsKey>,
    headers: HeaderMap,
) -> Response {
    if let Some(hash) = key {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.map(auth::hash_key).as_deref() != Some(hash.as_str()) {
            return ApiError::unauthorized().into_response();
        }
    }
    state.metrics.store_write_errors(state.store.write_errors());
    state.metrics.replicas_live(state.tenants.replicas());
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to
/// `server.shutdown_grace_ms`) and drains the trace queue.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    limits: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone(), limits);
    let grace = Duration::from_millis(limits.shutdown_grace_ms);
    listen::run(listener, app, limits, grace, shutdown).await;
    state.ready.store(false, Ordering::Relaxed);
    if let Err(e) = state.store.close().await {
        tracing::error!(error = %e, "flushing traces on shutdown failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A shared pipeline shown to a tenant keeps its strategies, models and plugins,
    /// never the plugins' settings nor the tenants it serves.
    #[test]
    fn a_shared_tree_shows_no_plugin_settings_or_tenants() {
        let def: crate::pipeline::PipelineDef = toml::from_str(
            r#"
            tenants = ["a", "other-customer"]
            type = "cascade"
            steps = [
              { type = "single", model = "cheap", verify = [{ plugin = "judge", config = { api_key = "sk-secret" } }] },
              { type = "route", router = { plugin = "pick", config = { token = "t0ken" } }, models = ["big"] },
            ]
            "#,
        )
        .unwrap();
        let tree = super::shared_tree(&def);
        let text = tree.to_string();
        assert_eq!(tree["type"], "cascade");
        assert_eq!(tree["steps"][0]["verify"][0]["plugin"], "judge");
        assert_eq!(tree["steps"][1]["router"]["plugin"], "pick");
        for hidden in ["sk-secret", "t0ken", "config", "other-customer"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }

    /// `docs/openapi.json` is the served document, regenerated with
    /// `ARBITER_WRITE_OPENAPI=1 cargo test -p arbiter --lib openapi`.
    #[test]
    fn the_openapi_document_in_the_repository_is_current() {
        let doc = serde_json::to_string_pretty(&super::openapi()).unwrap() + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        if std::env::var_os("ARBITER_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &doc).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == doc,
            "docs/openapi.json is stale: ARBITER_WRITE_OPENAPI=1 cargo test -p arbiter --lib openapi"
        );
        let value: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let paths: Vec<&str> = value["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for p in [
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/models/{id}",
            "/v1/traces",
            "/v1/usage",
            "/v1/stats/pipelines",
            "/v1/stats/models",
            "/v1/stats/plugins",
            "/admin/v1/tenants/{name}/stats/pipelines",
            "/admin/v1/tenants/{name}/keys",
            "/admin/v1/keys/{id}",
            "/admin/v1/tenants/{name}/traces",
            "/admin/v1/reload",
            "/metrics",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
    }
}
