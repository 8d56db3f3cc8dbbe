//! Capability `model`: ask the host for a completion (LLM-as-judge, model-made plans).
//!
//! Using this module makes the plugin import `arbiter:plugin/model`; the host loads such
//! a plugin only where the operator granted the `model` capability.

pub use crate::bindings::arbiter::plugin::model::{Completion, CompletionRequest, ModelError};
use crate::types::Message;

/// Sends `messages` to the host's models. `model: None` lets the pipeline choose.
pub fn complete(
    messages: Vec<Message>,
    model: Option<&str>,
    max_tokens: Option<u32>,
) -> Result<Completion, ModelError> {
    crate::bindings::arbiter::plugin::model::complete(&CompletionRequest {
        messages,
        model: model.map(String::from),
        max_tokens,
        temperature: None,
    })
}
