//! Conversions between 0.1.0's records and the host's own (`runtime::types`): those
//! shared by every version (`../per_version/convert.rs`), then the records 0.1.0 shapes
//! its own way.

include!("../per_version/convert.rs");

pub(super) fn task_to(t: &host::Task) -> wit::Task {
    wit::Task {
        id: t.id.clone(),
        messages: t
            .messages
            .iter()
            .map(|m| wit::Message {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect(),
        tags: t.tags.clone(),
        metadata: t
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub(super) fn candidate_to(c: &host::Candidate) -> wit::Candidate {
    wit::Candidate {
        index: c.index,
        model: c.model.clone(),
        text: c.text.clone(),
    }
}

pub(super) fn request_from(r: wmodel::CompletionRequest) -> host::CompletionRequest {
    host::CompletionRequest {
        messages: r
            .messages
            .into_iter()
            .map(|m| host::Message::text(m.role, m.content))
            .collect(),
        model: r.model,
        max_tokens: r.max_tokens,
        temperature: r.temperature,
    }
}
