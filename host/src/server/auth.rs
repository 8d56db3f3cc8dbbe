//! Who is calling: the bearer key, resolved through the in-memory registry
//! (`tenancy::Tenants`). Extractors answer a missing, unknown, revoked or expired key
//! (401) and a disabled tenant or a key of the wrong role (403) before any body is read.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::errors::ApiError;
use super::AppState;
pub use crate::tenancy::{generate_key, hash_key};
use crate::tenancy::{Admission, Caller, TenantState};

/// The bearer token of a request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!key.is_empty()).then_some(key)
}

fn caller(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
    let (caller, due) = state.tenants.authenticate(key);
    if let Some((id, at)) = due {
        state.store.key_used(id, at);
    }
    Ok(caller?)
}

/// The tenant whose key the request carries.
#[derive(Debug, Clone)]
pub struct Tenant(pub Arc<TenantState>);

impl Tenant {
    pub fn name(&self) -> &str {
        self.0.name()
    }
}

impl FromRequestParts<Arc<AppState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Tenant, ApiError> {
        match caller(parts, state)? {
            Caller::Tenant(t) => Ok(Tenant(t)),
            Caller::Operator => Err(ApiError::forbidden(
                "tenant_key_required",
                "this is an operator key; the /v1 API takes a tenant's key",
            )),
        }
    }
}

/// A tenant's request admitted under its rate and concurrency limits (429 with
/// `Retry-After` otherwise), checked before the body is read. The slot is held until
/// the value is dropped.
pub struct Admitted(pub Tenant, pub Admission);

impl FromRequestParts<Arc<AppState>> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Admitted, ApiError> {
        let tenant = Tenant::from_request_parts(parts, state).await?;
        let admission = tenant.0.admit()?;
        Ok(Admitted(tenant, admission))
    }
}

/// An operator's request (the admin API).
pub struct Operator;

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Operator, ApiError> {
        match caller(parts, state)? {
            Caller::Operator => Ok(Operator),
            Caller::Tenant(_) => Err(ApiError::forbidden(
                "operator_key_required",
                "the admin API takes an operator key, not a tenant's",
            )),
        }
    }
}
