"""Calls a running Arbiter gateway with the official `openai` package: JSON, streaming
and an error, as an application would. Usage: openai_client.py BASE_URL API_KEY"""
import json
import sys

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)

r = client.chat.completions.create(model="verified", messages=[{"role": "user", "content": "What is 2+2?"}])
assert r.choices[0].message.content == "2 + 2 = 4\n#### 4", r
assert r.model_extra["arbiter"]["outcome"] == "accepted", r.model_extra
assert r.usage.total_tokens > 0
print("json ok")

parts = []
last = None
for chunk in client.chat.completions.create(
    model="right", messages=[{"role": "user", "content": "What is 2+2?"}], stream=True
):
    last = chunk
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
assert "".join(parts) == "2 + 2 = 4\n#### 4", parts
assert last.model_extra["arbiter"]["trace_id"]
print("stream ok")

try:
    client.chat.completions.create(model="no-such-pipeline", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected an error")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e
assert client.models.retrieve("verified").id == "verified"
try:
    client.models.retrieve("only-b")
    raise SystemExit("expected an error")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e
print("error ok")

# Sampling parameters as the SDK sends them reach the upstream (`params` echoes them).
r = client.chat.completions.create(
    model="params",
    messages=[{"role": "user", "content": "x"}],
    stop="END",
    seed=5,
    top_p=0.5,
    response_format={"type": "json_object"},
)
seen = json.loads(r.choices[0].message.content)
assert seen == {"stop": ["END"], "seed": 5, "top_p": 0.5, "response_format": {"type": "json_object"}}, seen
assert r.choices[0].finish_reason == "stop", r

try:
    client.chat.completions.create(
        model="params",
        messages=[{"role": "user", "content": "x"}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    )
    raise SystemExit("expected an error")
except openai.BadRequestError as e:
    assert e.code == "unsupported_parameter" and e.param == "tools", e
print("parameters ok")

# OpenAI's newer token limit, and fields the gateway does not know: forwarded to a
# provider set to forward them (under the name it takes), refused by name elsewhere.
r = client.chat.completions.create(
    model="params-open",
    messages=[{"role": "user", "content": "x"}],
    max_completion_tokens=9,
    extra_body={"top_k": 3, "repetition_penalty": 1.1},
)
seen = json.loads(r.choices[0].message.content)
assert seen == {"max_completion_tokens": 9, "top_k": 3, "repetition_penalty": 1.1}, seen
r = client.chat.completions.create(model="params", messages=[{"role": "user", "content": "x"}], max_completion_tokens=9)
assert json.loads(r.choices[0].message.content) == {"max_tokens": 9}, r
for model in ["params", "verified"]:
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], extra_body={"top_k": 3})
        raise SystemExit("expected an error")
    except openai.BadRequestError as e:
        assert e.code == "unsupported_parameter" and e.param == "top_k", e
print("fields ok")

# stream_options.include_usage: a last chunk with no choices and the usage of every
# call; the calls themselves in the `arbiter` object.
chunks = list(
    client.chat.completions.create(
        model="verified",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
last = chunks[-1]
assert last.choices == [] and last.usage.total_tokens == 12, last
calls = last.model_extra["arbiter"]["calls"]
assert [c["model"] for c in calls] == ["right"] and calls[0]["prompt_tokens"] == 7, calls
assert all(c.usage is None for c in chunks[:-1]), chunks
print("usage ok")
