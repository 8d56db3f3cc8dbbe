#!/usr/bin/env python3
"""Time from a tenant's plugin upload to its first verified answer, for a Rust and a
Python plugin, against a release `arbiter serve` on recorded outputs (replay provider,
1 ms latency). Each round starts a gateway on a fresh data folder (an empty artifact
cache, so the upload compiles) and, per plugin:

  upload    POST /v1/plugins (the body, checks, compile in the child compiler, store)
  pipeline  PUT /v1/pipelines/<name> (validated: the plugin checks its settings)
  call      the first chat completion through the pipeline (its first instance)

then a second tenant uploads the same bytes (the artifact is compiled already: what an
upload costs besides the compile) and calls its own pipeline.

  python3 bench/upload-first-call.py [--rounds 3] [--bin target/release/arbiter]

Prints one JSON line per round and plugin, then the medians.
"""

import argparse
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
OPERATOR = "sk-bench-operator"

CONFIG = """
[server]
data_dir = "{data}"

[providers.gsm8k]
kind = "replay"
dataset = "{root}/data/gsm8k-dev.jsonl"
seed = 1
default_latency = {{ median_ms = 1, p95_ms = 1 }}

[providers.humaneval]
kind = "replay"
dataset = "{root}/data/humaneval-dev.jsonl"
seed = 1
default_latency = {{ median_ms = 1, p95_ms = 1 }}

[models.mixtral-8x7b-instruct]
provider = "gsm8k"
input_price = 0.6
output_price = 0.6

[models.codegen-16b]
provider = "humaneval"
input_price = 0.5
output_price = 0.5
"""


def request(method, url, key, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("content-type", content_type)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            status, doc = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, doc = e.code, e.read()
    ms = (time.perf_counter() - started) * 1e3
    return status, json.loads(doc or b"null"), ms


def first_record(dataset):
    """The dataset's first prompt, with the metadata `arbiter eval` gives its plugins."""
    with open(ROOT / "data" / dataset) as f:
        r = json.loads(f.readline())
    metadata = {}
    if "generated_tests" in r:
        metadata = {"tests": json.dumps(r["generated_tests"]), "entry-point": r["entry_point"]}
    return r["prompt"], metadata


def build(project):
    out = subprocess.run(
        [args.bin, "plugin", "build", str(ROOT / "plugins" / project), "--json"],
        check=True, capture_output=True, text=True,
    )
    return pathlib.Path(json.loads(out.stdout)["components"][0])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tenant(url, name):
    policy = {"models": ["*"], "plugins": {"max_deadline_ms": 5000}}
    s, doc, _ = request("POST", f"{url}/admin/v1/tenants", OPERATOR, {"name": name, "policy": policy})
    assert s == 201, doc
    s, doc, _ = request("POST", f"{url}/admin/v1/tenants/{name}/keys", OPERATOR, {})
    assert s == 201, doc
    return doc["key"]


def first_call(url, key, plugin, name, wasm, model, prompt):
    timings = {}
    s, doc, timings["upload_ms"] = request(
        "POST", f"{url}/v1/plugins?name={name}&deadline_ms=5000", key, wasm.read_bytes(), "application/wasm")
    assert s in (200, 201), doc
    timings["compile_ms"] = doc["compile_ms"]
    tree = {"type": "single", "model": model, "verify": [{"plugin": name}]}
    s, doc, timings["pipeline_ms"] = request("PUT", f"{url}/v1/pipelines/checked-{name}", key, tree)
    assert s in (200, 201), doc
    prompt, metadata = prompt
    chat = {"model": f"checked-{name}", "messages": [{"role": "user", "content": prompt}],
            "metadata": metadata}
    s, doc, timings["call_ms"] = request("POST", f"{url}/v1/chat/completions", key, chat)
    assert s == 200, doc
    assert doc["arbiter"]["verdicts"][0]["plugin"].startswith(f"{name}@sha256:"), doc
    verdict = doc["arbiter"]["verdicts"][0]
    timings["verdict"] = verdict.get("error") or verdict.get("reason", "")[:60]
    timings["total_ms"] = timings["upload_ms"] + timings["pipeline_ms"] + timings["call_ms"]
    timings["size_bytes"] = wasm.stat().st_size
    return timings


def main():
    plugins = [
        ("rust", build("gsm8k-verifier"), "mixtral-8x7b-instruct", first_record("gsm8k-dev.jsonl")),
        ("python", build("python-code-verifier"), "codegen-16b", first_record("humaneval-dev.jsonl")),
    ]
    rows = []
    for round_ in range(args.rounds):
        data = pathlib.Path(tempfile.mkdtemp())
        config = data / "bench.toml"
        config.write_text(CONFIG.format(data=data / "data", root=ROOT))
        url = f"http://127.0.0.1:{free_port()}"
        server = subprocess.Popen(
            [args.bin, "serve", "--config", str(config), "--listen", url[7:],
             "--operator-key", OPERATOR, "--api-key", "sk-bench-default"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "ARBITER_LOG": "error"},
        )
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"{url}/readyz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            for lang, wasm, model, prompt in plugins:
                for case in ("cold", "compiled"):
                    key = tenant(url, f"{lang}-{case}-{round_}")
                    t = first_call(url, key, lang, f"{lang}-checker", wasm, model, prompt)
                    row = {"round": round_, "plugin": lang, "case": case, **t}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        finally:
            server.kill()
            server.wait()
            shutil.rmtree(data, ignore_errors=True)
    print("median over rounds:")
    for lang in ("rust", "python"):
        for case in ("cold", "compiled"):
            sel = [r for r in rows if r["plugin"] == lang and r["case"] == case]
            med = {k: round(statistics.median(r[k] for r in sel), 1)
                   for k in ("upload_ms", "compile_ms", "pipeline_ms", "call_ms", "total_ms")}
            print(f"  {lang:6} {case:8} size {sel[0]['size_bytes']:>9} B  {json.dumps(med)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "arbiter"))
    args = parser.parse_args()
    main()
