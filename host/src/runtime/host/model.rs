use crate::runtime::bindings::arbiter::plugin::model::{
    Completion as WitCompletion, CompletionRequest as WitRequest, Host, ModelError as WitModelError,
};
use crate::runtime::bindings::arbiter::plugin::types::Message as WitMessage;
use crate::runtime::state::CallState;
use crate::runtime::types::{Completion, CompletionRequest, Message, ModelError};

/// Serves the `model` capability for one call. The orchestrator implements it on top of
/// its providers and the request's budget; the runtime only forwards.
#[async_trait::async_trait]
pub trait ModelAccess: Send + Sync {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ModelError>;
}

impl Host for CallState {
    async fn complete(&mut self, request: WitRequest) -> Result<WitCompletion, WitModelError> {
        let Some(access) = self.ctx.model.clone() else {
            return Err(WitModelError::Denied(
                "no model access is available to this call".into(),
            ));
        };
        let request = CompletionRequest {
            messages: request
                .messages
                .into_iter()
                .map(|m: WitMessage| Message {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
            model: request.model,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
        };
        match access.complete(request).await {
            Ok(c) => Ok(WitCompletion {
                text: c.text,
                model: c.model,
                input_tokens: c.input_tokens,
                output_tokens: c.output_tokens,
            }),
            Err(ModelError::Denied(m)) => Err(WitModelError::Denied(m)),
            Err(ModelError::OverBudget(m)) => Err(WitModelError::OverBudget(m)),
            Err(ModelError::Failed(m)) => Err(WitModelError::Failed(m)),
        }
    }
}
