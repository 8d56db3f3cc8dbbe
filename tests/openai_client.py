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
