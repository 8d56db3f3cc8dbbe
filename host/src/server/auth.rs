//! API keys mapped to tenants. Only SHA-256 hashes are kept (config and database); a
//! presented key is hashed and looked up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use super::AppState;

pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A fresh random key (`sk-arbiter-` + 32 hex characters of OS randomness).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("sk-arbiter-{}", hex::encode(bytes))
}

#[derive(Default)]
pub struct Auth {
    tenants_by_hash: RwLock<HashMap<String, String>>,
}

impl Auth {
    pub fn add(&self, hash: String, tenant: String) {
        self.tenants_by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, tenant);
    }

    pub fn is_empty(&self) -> bool {
        self.tenants_by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The tenant of the request's bearer key.
    pub fn tenant(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?
            .trim();
        if key.is_empty() {
            return None;
        }
        self.tenants_by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash_key(key))
            .cloned()
    }
}

/// The tenant whose key the request carries. A handler that takes it answers a missing
/// or unknown key with a 401 (OpenAI's error JSON) before it reads the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

impl FromRequestParts<Arc<AppState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Tenant, ApiError> {
        state
            .auth
            .tenant(&parts.headers)
            .map(Tenant)
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_by_hash() {
        let auth = Auth::default();
        let key = generate_key();
        assert!(key.starts_with("sk-arbiter-") && key.len() == 43);
        auth.add(hash_key(&key), "acme".into());
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        assert_eq!(auth.tenant(&h).as_deref(), Some("acme"));
        h.insert("authorization", "Bearer sk-wrong".parse().unwrap());
        assert_eq!(auth.tenant(&h), None);
        assert_eq!(auth.tenant(&HeaderMap::new()), None);
    }
}
