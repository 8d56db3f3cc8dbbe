"""Calls a running Arbiter gateway with the official `openai` package: JSON, streaming,
embeddings and errors, as an application would. Usage: openai_client.py BASE_URL API_KEY"""
import base64
import json
import struct
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

# Tool calling: the mock `tools` model calls the request's tools with arguments made
# from their schemas (first two; one with parallel_tool_calls=False; the one named).
weather = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
clock = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
}
ask = [{"role": "user", "content": "Weather in Paris?"}]
for model in ["tools", "tools-cascade"]:
    r = client.chat.completions.create(model=model, messages=ask, tools=[weather])
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and m.content is None, r
    assert len(m.tool_calls) == 1 and m.tool_calls[0].type == "function", m
    assert m.tool_calls[0].function.name == "get_weather", m
    assert json.loads(m.tool_calls[0].function.arguments) == {"city": "Paris", "days": 3}, m
r = client.chat.completions.create(model="tools", messages=ask, tools=[weather, clock])
assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_weather", "get_time"], r
r = client.chat.completions.create(model="tools", messages=ask, tools=[weather, clock], parallel_tool_calls=False)
assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_weather"], r
r = client.chat.completions.create(
    model="tools", messages=ask, tools=[weather, clock], tool_choice={"type": "function", "function": {"name": "get_time"}}
)
assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_time"], r
call = client.chat.completions.create(model="tools", messages=ask, tools=[weather]).choices[0].message.tool_calls[0]
turn = [
    *ask,
    {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
]
r = client.chat.completions.create(model="tools", messages=turn, tools=[weather])
assert r.choices[0].message.content == "the tool said: sunny" and r.choices[0].finish_reason == "stop", r
for bad, param in [
    ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools"),
    ({"tools": [weather], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
]:
    try:
        client.chat.completions.create(model="tools", messages=ask, **bad)
        raise SystemExit("expected an error")
    except openai.BadRequestError as e:
        assert e.param == param, e
try:
    client.chat.completions.create(model="tools", messages=[*ask, {"role": "tool", "content": "x"}])
    raise SystemExit("expected an error")
except openai.BadRequestError as e:
    assert "tool_call_id" in e.message, e
try:
    client.chat.completions.create(model="chain", messages=ask, tools=[weather])
    raise SystemExit("expected an error")
except openai.BadRequestError as e:
    assert e.code == "unsupported_parameter" and e.param == "tools", e
print("tools ok")


def streamed(**kwargs):
    """Assembles a streamed answer as applications do: text, tool calls by index."""
    text, calls, finish = "", {}, None
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        text += d.content or ""
        for tc in d.tool_calls or []:
            c = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            c["id"] = tc.id or c["id"]
            c["name"] += (tc.function and tc.function.name) or ""
            c["arguments"] += (tc.function and tc.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


for model in ["tools", "tools-cascade"]:
    text, calls, finish = streamed(model=model, messages=ask, tools=[weather, clock])
    assert finish == "tool_calls" and text == "", (model, text, finish)
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("call_0", "get_weather", {"city": "Paris", "days": 3}),
        ("call_1", "get_time", {"zone": "Paris"}),
    ], (model, calls)
print("tools stream ok")

r = client.chat.completions.create(model="right", messages=ask, logprobs=True, top_logprobs=2)
lp = r.choices[0].logprobs.content
assert [t.token for t in lp] == ["2 ", "+ ", "2 ", "= ", "4\n#### ", "4"][: len(lp)] and len(lp) > 2, lp
assert lp[0].logprob == -0.25 and [t.token for t in lp[0].top_logprobs] == ["2 0", "2 1"], lp[0]
assert client.chat.completions.create(model="right", messages=ask).choices[0].logprobs is None
tokens = []
for chunk in client.chat.completions.create(model="right", messages=ask, logprobs=True, stream=True):
    if chunk.choices and chunk.choices[0].logprobs:
        tokens += [t.token for t in chunk.choices[0].logprobs.content]
assert "".join(tokens) == "2 + 2 = 4\n#### 4", tokens
try:
    client.chat.completions.create(model="right", messages=ask, top_logprobs=2)
    raise SystemExit("expected an error")
except openai.BadRequestError as e:
    assert e.param == "top_logprobs", e
print("logprobs ok")

# Anthropic: what the Messages API is sent (`claude-echo` answers with the body it got),
# and its tool use read back as OpenAI tool calls, whole and streamed.
r = client.chat.completions.create(
    model="claude-echo", messages=turn, tools=[weather], tool_choice="required", parallel_tool_calls=False
)
sent = json.loads(r.choices[0].message.content)
assert sent["tools"] == [
    {"name": "get_weather", "description": "Weather in a city", "input_schema": weather["function"]["parameters"]}
], sent
assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}, sent
assert sent["messages"][1] == {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris", "days": 3}}],
}, sent
assert sent["messages"][2] == {
    "role": "user",
    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
}, sent
assert r.choices[0].finish_reason == "stop", r
r = client.chat.completions.create(model="claude-tools", messages=ask, tools=[weather, clock])
m = r.choices[0].message
assert r.choices[0].finish_reason == "tool_calls" and m.content == "Let me look.", r
assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in m.tool_calls] == [
    ("toolu_0", "get_weather", {"city": "Paris", "days": 3}),
    ("toolu_1", "get_time", {"zone": "Paris"}),
], m
text, calls, finish = streamed(model="claude-tools", messages=ask, tools=[weather, clock])
assert text == "Let me look." and finish == "tool_calls", (text, finish)
assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls] == [
    ("toolu_0", "get_weather", {"city": "Paris", "days": 3}),
    ("toolu_1", "get_time", {"zone": "Paris"}),
], calls
print("anthropic tools ok")

# n: a raw model's upstream samples them; a best_of pipeline returns its top n accepted
# answers; strategies that choose one answer refuse it by name.
r = client.chat.completions.create(model="right", messages=ask, n=3)
assert [c.index for c in r.choices] == [0, 1, 2] and r.usage.completion_tokens == 15, r
assert all(c.message.content == "2 + 2 = 4\n#### 4" for c in r.choices), r
r = client.chat.completions.create(model="best-of-slow", messages=ask, n=2)
assert len(r.choices) == 2 and all(c.message.content == "2 + 2 = 4\n#### 4" for c in r.choices), r
assert r.model_extra["arbiter"]["candidates_tried"] == 3, r.model_extra
r = client.chat.completions.create(model="best-of", messages=ask, n=3)
assert [c.message.content for c in r.choices] == ["2 + 2 = 4\n#### 4"], r
# Streamed, the choices come whole, each under its index, each with its finish reason;
# a tool-calling model's choices carry their calls.
for model, n, extra in [("right", 3, {}), ("best-of-slow", 2, {}), ("tools", 2, {"tools": [weather]})]:
    texts, calls, finishes, last = {}, {}, {}, None
    for chunk in client.chat.completions.create(model=model, messages=ask, n=n, stream=True, **extra):
        last = chunk
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            for tc in c.delta.tool_calls or []:
                calls.setdefault(c.index, []).append(tc.function.name)
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
    assert sorted(finishes) == list(range(n)), (model, finishes)
    if "tools" in extra:
        assert all(calls[i] == ["get_weather"] and finishes[i] == "tool_calls" for i in range(n)), (calls, finishes)
    else:
        assert all(texts[i] == "2 + 2 = 4\n#### 4" and finishes[i] == "stop" for i in range(n)), (model, texts)
    assert last.model_extra["arbiter"]["trace_id"], last
for model, kwargs in [("cascade", {}), ("right", {"n": 17})]:
    try:
        client.chat.completions.create(model=model, messages=ask, **{"n": 2, **kwargs})
        raise SystemExit("expected an error")
    except openai.BadRequestError as e:
        assert e.param == "n", e
print("n ok")

# Embeddings: a string and a list, as floats and as base64. Left unset, the SDK asks for
# base64 and decodes it to floats itself.
e = client.embeddings.create(model="embed", input="hello")
assert e.object == "list" and e.model == "embed" and len(e.data) == 1, e
default = e.data[0].embedding
assert default == [0.25, 0.375, 0.5, -0.375], default
assert (e.usage.prompt_tokens, e.usage.total_tokens) == (3, 3), e.usage
assert e.model_extra["arbiter"]["trace_id"], e.model_extra
f = client.embeddings.create(model="embed", input=["hello", "world!"], encoding_format="float")
assert [d.index for d in f.data] == [0, 1] and f.data[0].embedding == default, f
assert f.usage.prompt_tokens == 6, f.usage
b = client.embeddings.create(model="embed", input=["hello", "world!"], encoding_format="base64")
for got, want in zip(b.data, f.data):
    raw = base64.b64decode(got.embedding)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == want.embedding, (got, want)
assert len(client.embeddings.create(model="embed", input=[[1, 2], [3]], dimensions=8).data[1].embedding) == 8
for kwargs, code, param in [
    ({"model": "verified", "input": "x"}, "embeddings_unsupported", "model"),
    ({"model": "claude-echo", "input": "x"}, "embeddings_unsupported", "model"),
    ({"model": "embed", "input": []}, "invalid_value", "input"),
]:
    try:
        client.embeddings.create(**kwargs)
        raise SystemExit("expected an error")
    except openai.BadRequestError as e:
        assert e.code == code and e.param == param, e
print("embeddings ok")
