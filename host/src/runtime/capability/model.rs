//! `model`: a plugin asks the host's models for a completion (LLM-as-judge). Granted per
//! plugin; the caller decides which models one call may reach.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::Capability;
use crate::runtime::contract;
use crate::runtime::state::CallState;
use crate::runtime::types::{Completion, CompletionRequest, ModelError};

/// As written in `grants`.
pub const NAME: &str = "model";

pub(super) const CAPABILITY: Capability = Capability {
    name: NAME,
    add_to_linker,
};

fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    contract::v0_1_0::add_model(linker)?;
    contract::v0_2_0::add_model(linker)
}

/// Serves the `model` capability for one call. The orchestrator implements it on top of
/// its providers and the request's budget; the runtime only forwards what the call's
/// [`AllowedModels`] let through.
#[async_trait::async_trait]
pub trait ModelAccess: Send + Sync {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ModelError>;
}

/// The models a call may ask for: in the gateway, the pipeline's own models and its
/// `judge_models`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowedModels {
    /// Sorted and unique.
    names: Vec<String>,
    /// Asked when the plugin names no model.
    cheapest: Option<String>,
}

impl AllowedModels {
    /// `models` come with a price to rank them by (the same unit for all); the cheapest
    /// (the first by name among equals) answers requests that name no model.
    pub fn new(models: impl IntoIterator<Item = (String, f64)>) -> AllowedModels {
        let mut priced: Vec<(String, f64)> = models.into_iter().collect();
        priced.sort_by(|a, b| a.0.cmp(&b.0));
        priced.dedup_by(|a, b| a.0 == b.0);
        let cheapest = priced
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(name, _)| name.clone());
        AllowedModels {
            names: priced.into_iter().map(|(name, _)| name).collect(),
            cheapest,
        }
    }

    pub fn contains(&self, model: &str) -> bool {
        self.names
            .binary_search_by(|n| n.as_str().cmp(model))
            .is_ok()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn cheapest(&self) -> Option<&str> {
        self.cheapest.as_deref()
    }

    /// The model a request goes to, or why it may not go anywhere.
    fn resolve(&self, requested: Option<String>) -> Result<String, ModelError> {
        match requested {
            Some(m) if self.contains(&m) => Ok(m),
            Some(m) => Err(ModelError::Denied(format!(
                "model `{m}` is not allowed here: a plugin may ask for the pipeline's own \
                 models and its `judge_models`"
            ))),
            None => self
                .cheapest
                .clone()
                .ok_or_else(|| ModelError::Denied("no model is allowed here".into())),
        }
    }
}

/// The `model` capability's context for one call: who answers, and what it may ask.
#[derive(Clone)]
pub struct ModelContext {
    access: Arc<dyn ModelAccess>,
    /// `None` when no pipeline is around the call (`arbiter plugin call`, tests): the
    /// access alone decides.
    allowed: Option<Arc<AllowedModels>>,
}

impl ModelContext {
    /// Every model `access` serves; a request naming none is `access`'s to place.
    pub fn new(access: Arc<dyn ModelAccess>) -> ModelContext {
        ModelContext {
            access,
            allowed: None,
        }
    }

    /// Only the `allowed` models; a request naming none goes to the cheapest of them.
    pub fn restricted(access: Arc<dyn ModelAccess>, allowed: Arc<AllowedModels>) -> ModelContext {
        ModelContext {
            access,
            allowed: Some(allowed),
        }
    }

    pub fn allowed(&self) -> Option<&AllowedModels> {
        self.allowed.as_deref()
    }
}

impl std::fmt::Debug for ModelContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelContext")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// What `model` sees of a call's store: the caller's context, if any.
pub(crate) struct ModelView<'a>(&'a Option<ModelContext>);

pub(crate) struct Model;

impl HasData for Model {
    type Data<'a> = ModelView<'a>;
}

pub(crate) fn view(state: &mut CallState) -> ModelView<'_> {
    ModelView(&state.ctx.model)
}

impl ModelView<'_> {
    /// Checks the request against the call's policy before anything is spent on it.
    pub(crate) async fn complete(
        &self,
        mut request: CompletionRequest,
    ) -> Result<Completion, ModelError> {
        let Some(ctx) = self.0 else {
            return Err(ModelError::Denied(
                "no model access is available to this call".into(),
            ));
        };
        if let Some(allowed) = &ctx.allowed {
            request.model = Some(allowed.resolve(request.model)?);
        }
        ctx.access.complete(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedModels {
        AllowedModels::new([
            ("large".to_string(), 2.0),
            ("small".to_string(), 0.5),
            ("tiny".to_string(), 0.5),
            ("large".to_string(), 2.0),
        ])
    }

    #[test]
    fn allowed_models_resolve_requests() {
        let a = allowed();
        assert_eq!(a.names(), ["large", "small", "tiny"]);
        assert_eq!(a.cheapest(), Some("small"), "first by name among equals");
        assert_eq!(a.resolve(Some("large".into())), Ok("large".into()));
        assert_eq!(a.resolve(None), Ok("small".into()));
        assert!(matches!(
            a.resolve(Some("other".into())),
            Err(ModelError::Denied(m)) if m.contains("`other`") && m.contains("judge_models")
        ));
        assert!(matches!(
            AllowedModels::default().resolve(None),
            Err(ModelError::Denied(_))
        ));
    }
}
