#!/usr/bin/env python3
"""How fast a change on one replica holds on another: two release `arbiter serve`
replicas on one PostgreSQL database (a throwaway server, `bench/pg-throwaway.sh`).
Each trial makes a key on A, waits until B accepts it, revokes it on A, and times
until B refuses it (polling B as fast as it answers). Also times the first half: a new
key made on A until B accepts it.

  python3 bench/replicas.py [--trials 100] [--bin target/release/arbiter]

Prints the per-trial times (ms) as JSON lines, then p50, p90 and max of each.
"""

import argparse
import json
import os
import pathlib
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

[store]
url = "{url}"

[providers.replay]
kind = "replay"
dataset = "{root}/data/gsm8k-dev.jsonl"

[models.mixtral-8x7b-instruct]
provider = "replay"
input_price = 0.6
output_price = 0.6
"""


def parse(raw):
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")  # /readyz answers text


def call(method, url, key, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, parse(r.read())
    except urllib.error.HTTPError as e:
        return e.code, parse(e.read())
    except urllib.error.URLError:
        return 0, None  # not listening yet


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(probe, limit=10.0):
    """Seconds until probe() holds."""
    started = time.perf_counter()
    while not probe():
        if time.perf_counter() - started > limit:
            raise SystemExit(f"not within {limit} s")
    return time.perf_counter() - started


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    work = pathlib.Path(tempfile.mkdtemp())
    work.chmod(0o755)  # the server may run as another user (postgres, under root)
    pg = work / "pg"
    url = subprocess.run([str(ROOT / "bench/pg-throwaway.sh"), "start", str(pg)],
                         check=True, capture_output=True, text=True).stdout.strip()
    servers = []
    try:
        config = work / "arbiter.toml"
        config.write_text(CONFIG.format(data=work / "data", url=url, root=ROOT))
        urls = []
        for _ in range(2):
            base = f"http://127.0.0.1:{free_port()}"
            servers.append(subprocess.Popen(
                [args.bin, "serve", "--config", str(config), "--listen", base[7:],
                 "--operator-key", OPERATOR],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "ARBITER_LOG": "error"}))
            until(lambda: call("GET", f"{base}/readyz", "")[0] == 200, 30)
            urls.append(base)
        a, b = urls
        s, _ = call("POST", f"{a}/admin/v1/tenants", OPERATOR, {"name": "bench"})
        assert s == 201
        made, revoked = [], []
        for trial in range(args.trials):
            s, k = call("POST", f"{a}/admin/v1/tenants/bench/keys", OPERATOR, {"name": f"t{trial}"})
            assert s == 201, k
            made.append(until(lambda: call("GET", f"{b}/v1/models", k["key"])[0] == 200) * 1e3)
            s, _ = call("DELETE", f"{a}/admin/v1/keys/{k['id']}", OPERATOR)
            assert s == 200
            revoked.append(until(lambda: call("GET", f"{b}/v1/models", k["key"])[0] == 401) * 1e3)
            print(json.dumps({"trial": trial, "key_made_ms": round(made[-1], 2),
                              "key_revoked_ms": round(revoked[-1], 2)}), flush=True)
        for name, xs in (("key made on A, accepted on B", made),
                         ("key revoked on A, refused on B", revoked)):
            print(f"{name}: p50 {statistics.median(xs):.1f} ms, p90 {pct(xs, 90):.1f} ms, "
                  f"max {max(xs):.1f} ms over {len(xs)} trials")
    finally:
        for s in servers:
            s.kill()
            s.wait()
        subprocess.run([str(ROOT / "bench/pg-throwaway.sh"), "stop", str(pg)], check=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "arbiter"))
    args = parser.parse_args()
    main()
