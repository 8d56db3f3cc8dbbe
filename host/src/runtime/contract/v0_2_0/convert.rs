//! Conversions between 0.2.0's records and the host's own (`runtime::types`): those
//! shared by every version (`../per_version/convert.rs`), then the records 0.2.0 shapes
//! its own way.

include!("../per_version/convert.rs");

pub(super) fn task_to(t: &host::Task) -> wit::Task {
    wit::Task {
        id: t.id.clone(),
        messages: t.messages.iter().map(message_to).collect(),
        tags: t.tags.clone(),
        metadata: t
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tools: t
            .tools
            .iter()
            .map(|tool| wit::Tool {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: tool.parameters.clone(),
            })
            .collect(),
    }
}

pub(super) fn candidate_to(c: &host::Candidate) -> wit::Candidate {
    wit::Candidate {
        index: c.index,
        model: c.model.clone(),
        text: c.text.clone(),
        tool_calls: c.tool_calls.iter().map(tool_call_to).collect(),
        logprobs: c
            .logprobs
            .iter()
            .map(|l| wit::TokenLogprob {
                token: l.token.clone(),
                logprob: l.logprob,
                top: l.top.clone(),
            })
            .collect(),
    }
}

pub(super) fn request_from(r: wmodel::CompletionRequest) -> host::CompletionRequest {
    host::CompletionRequest {
        messages: r.messages.into_iter().map(message_from).collect(),
        model: r.model,
        max_tokens: r.max_tokens,
        temperature: r.temperature,
    }
}

fn message_to(m: &host::Message) -> wit::Message {
    wit::Message {
        role: m.role.clone(),
        content: m.content.clone(),
        tool_calls: m.tool_calls.iter().map(tool_call_to).collect(),
        tool_call_id: m.tool_call_id.clone(),
    }
}

fn message_from(m: wit::Message) -> host::Message {
    host::Message {
        role: m.role,
        content: m.content,
        tool_calls: m.tool_calls.into_iter().map(tool_call_from).collect(),
        tool_call_id: m.tool_call_id,
    }
}

fn tool_call_to(c: &host::ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id.clone(),
        name: c.name.clone(),
        arguments: c.arguments.clone(),
    }
}

fn tool_call_from(c: wit::ToolCall) -> host::ToolCall {
    host::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}
