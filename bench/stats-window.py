#!/usr/bin/env python3
"""Windowed statistics (GET /v1/stats/pipelines and /v1/stats/plugins) over a store of a
million requests.

Builds a SQLite store with the schema of host/src/store/sqlite.rs (its migrations, read
from the source) holding 1,000,000 requests of ten tenants over about 8 hours, each with
one model attempt judged by a verifier, then times the statistics queries exactly as
sqlite.rs writes them (`WINDOW_REQUESTS`, `WINDOW_COUNT`, `WINDOW_PLUGIN_CALLS`, read
from the source) for windows of one hour and of the whole day, with the row bounds the
host uses (20,000 requests for pipelines, 5,000 for plugins), and prints each plan.
Python's SQLite, not the copy bundled in the binary: the numbers show what the index
makes of the queries, not a gateway's end-to-end latency (which adds the percentiles,
computed in Rust over at most those rows).

    python3 bench/stats-window.py
"""
import json, os, random, re, sqlite3, statistics, sys, tempfile, time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
src = open(os.path.join(root, "host/src/store/sqlite.rs")).read()
const = lambda name: re.search(r'const %s: &str = "(.*?)";\n' % name, src, re.S).group(1).replace('\\"', '"')
work = tempfile.TemporaryDirectory()
db = sqlite3.connect(os.path.join(work.name, "traces.db"))
db.execute("PRAGMA journal_mode=WAL")
for m in ["MIG1", "MIG2", "MIG3", "MIG4", "MIG5"]:
    db.executescript(const(m))
random.seed(1)
N = 1_000_000
tenants = [f"t{i}" for i in range(10)]
pipelines = ["math-cascade", "math-race", "best-of", "single"]
outcomes = ["accepted"] * 80 + ["rejected"] * 10 + ["unverified"] * 8 + ["failed"] * 2
base = 1_760_000_000_000
t0 = time.time()
rows, attempts = [], []
for i in range(N):
    rid = f"{i:032x}"
    created = base + i * 30
    rows.append((rid, tenants[i % 10], random.choice(pipelines), created, random.uniform(50, 5000),
                 random.uniform(0, 0.02), random.choice(outcomes), "gpt-4", None, "42", None, "[]", None, 0, None))
    verdict = {"plugin": "math", "wall_us": random.uniform(100, 5000), "reason": "ok", "checks_failed": 0}
    if i % 50 == 0:
        verdict["error"] = "plugin_timeout: over 1000 ms"
    record = {"seq": 0, "node": "root", "kind": "model", "model": "gpt-4", "started_ms": 0, "latency_ms": 100,
              "input_tokens": 10, "output_tokens": 20, "cost_usd": 0.001, "outcome": "accepted",
              "verdicts": [verdict], "text": "x" * 200}
    attempts.append((rid, 0, json.dumps(record), "gpt-4", "accepted", 100.0, 0.001))
    if len(rows) == 100_000:
        db.executemany("INSERT INTO requests (id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget, answer_attempt, answer_attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO attempts (request_id, seq, record, model, outcome, latency_ms, cost_usd) VALUES (?,?,?,?,?,?,?)", attempts)
        db.commit(); rows, attempts = [], []
print(f"seeded {N} in {time.time()-t0:.0f}s", file=sys.stderr)
end = base + N * 30
hour, day = 3_600_000, 86_400_000
print("| query | window | rows | median ms | max ms (10 runs) | plan |")
print("|---|---|---|---|---|---|")
for name, sql, limit in [("pipelines", const("WINDOW_REQUESTS"), 20_001), ("count", const("WINDOW_COUNT"), 5_001),
                         ("plugin calls", const("WINDOW_PLUGIN_CALLS"), 5_000)]:
    for label, since in [("1 hour", end - hour), ("24 hours", end - day)]:
        p = ("t3", since, end, limit)
        times = []
        for _ in range(10):
            t = time.perf_counter(); n = len(db.execute(sql, p).fetchall()); times.append((time.perf_counter() - t) * 1e3)
        plan = "; ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, p))
        print(f"| {name} | {label} | {n} | {statistics.median(times):.2f} | {max(times):.2f} | {plan} |")
