//! Errors in OpenAI's JSON shape (`{"error": {"message", "type", "param", "code"}}`), so
//! OpenAI clients surface them as they would OpenAI's own.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::pipeline::budget::BudgetError;
use crate::pipeline::ExecError;

/// Every error's body, as OpenAI sends it (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `rate_limit_error`, `budget_error`, `upstream_error`,
    /// `timeout_error`, `server_error`.
    #[schema(rename = "type")]
    pub kind: String,
    /// The request parameter at fault, when there is one.
    pub param: Option<String>,
    /// Stable, for programs: `docs/gateway-errors.md` lists them.
    pub code: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    /// The request parameter at fault, when one is (a field the caller named, too).
    pub param: Option<std::borrow::Cow<'static, str>>,
    /// Sent as `Retry-After` (whole seconds, rounded up): when a refused limit lets the
    /// caller in again.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, after: std::time::Duration) -> ApiError {
        self.retry_after = Some(after);
        self
    }

    pub fn forbidden(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    pub fn with_param(mut self, param: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "missing or unknown API key: send `Authorization: Bearer <key>`",
        )
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            code,
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } })
    }
}

impl From<&ExecError> for ApiError {
    fn from(e: &ExecError) -> ApiError {
        let (status, kind) = match e {
            ExecError::UnknownTarget(_) => (StatusCode::NOT_FOUND, "invalid_request_error"),
            ExecError::OverBudget(BudgetError::Deadline) => {
                (StatusCode::GATEWAY_TIMEOUT, "timeout_error")
            }
            ExecError::OverBudget(BudgetError::SpendUnavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "server_error")
            }
            ExecError::OverBudget(_) => (StatusCode::PAYMENT_REQUIRED, "budget_error"),
            ExecError::Provider { error, .. } => match error {
                crate::providers::ProviderError::Timeout(_) => {
                    (StatusCode::GATEWAY_TIMEOUT, "upstream_error")
                }
                crate::providers::ProviderError::CircuitOpen(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "upstream_error")
                }
                crate::providers::ProviderError::Http { status: 429, .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error")
                }
                // The upstream refused the request itself (a parameter it does not
                // take, a prompt too long): the caller's to fix, as with OpenAI.
                crate::providers::ProviderError::Http {
                    status: 400 | 422, ..
                }
                | crate::providers::ProviderError::Unsupported(_) => {
                    (StatusCode::BAD_REQUEST, "invalid_request_error")
                }
                _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
            },
            ExecError::NoAnswer(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
            // Nobody reads this one: the client has gone (nginx's 499 for the metrics).
            ExecError::Cancelled => (
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid_request_error",
            ),
            ExecError::Plugin { .. } | ExecError::Invalid(_) | ExecError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
        };
        let api = ApiError::new(status, kind, e.code(), crate::scrub::scrub(&e.to_string()));
        match e {
            ExecError::OverBudget(BudgetError::Tenant(s)) => {
                let left = (s.resets_at - crate::tenancy::registry::now_s()).max(1);
                api.with_retry_after(std::time::Duration::from_secs(left as u64))
            }
            _ => api,
        }
    }
}

impl From<crate::tenancy::Refusal> for ApiError {
    fn from(r: crate::tenancy::Refusal) -> ApiError {
        use crate::tenancy::Refusal;
        let (code, after) = match &r {
            Refusal::Rate { retry_after, .. } => ("rate_limit_exceeded", *retry_after),
            Refusal::Concurrency(_) => (
                "concurrency_limit_exceeded",
                std::time::Duration::from_secs(1),
            ),
        };
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            code,
            r.to_string(),
        )
        .with_retry_after(after)
    }
}

impl From<crate::tenancy::AuthError> for ApiError {
    fn from(e: crate::tenancy::AuthError) -> ApiError {
        use crate::tenancy::AuthError;
        let code = match &e {
            AuthError::Unknown => "invalid_api_key",
            AuthError::Revoked => "key_revoked",
            AuthError::Expired => "key_expired",
            AuthError::Disabled(_) => {
                return ApiError::forbidden("tenant_disabled", e.to_string());
            }
        };
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            code,
            e.to_string(),
        )
    }
}

/// The largest request body the router takes, put in each request's extensions so that
/// the error for a larger one can say what the limit is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A request body whose rejections (too large, broken transfer) are OpenAI-shaped errors
/// like every other: axum's own `Bytes` rejections are plain text, which OpenAI clients
/// report as an unparseable response rather than as the error it is.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<RawBody, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| match (e.status(), limit) {
                (StatusCode::PAYLOAD_TOO_LARGE, limit) => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request_error",
                    "request_too_large",
                    match limit {
                        Some(BodyLimit(n)) => format!(
                            "the request body is larger than this gateway's limit of {n} bytes (server.max_body_bytes)"
                        ),
                        None => "the request body is larger than this gateway's limit (server.max_body_bytes)".into(),
                    },
                ),
                (status, _) => ApiError::new(
                    status,
                    "invalid_request_error",
                    "invalid_body",
                    format!("request body: {}", e.body_text()),
                ),
            })
    }
}

/// Unknown paths answer as OpenAI does, with its error shape, so a client that calls an
/// endpoint the gateway lacks learns which one.
pub async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        "unknown_url",
        format!("Invalid URL ({method} {})", uri.path()),
    )
}

/// A known path called with the wrong method.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        r
    }
}
