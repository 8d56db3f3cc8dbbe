#!/usr/bin/env python3
"""Trace listings over a store of a million requests.

Builds a SQLite store with the schema of host/src/store/sqlite.rs (its migrations, read
from the source) holding 1,000,000 requests of ten tenants, then times the listing
queries as `database::trace_list_query` shapes them (one page of 50, plus the row that
tells whether another follows) and prints each one's plan. It uses Python's SQLite, not
the copy bundled in the binary: the numbers show what the indexes make of the queries,
not a gateway's end-to-end latency.

    python3 bench/trace-listing.py
"""
import json, os, random, re, sqlite3, statistics, sys, tempfile, time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
src = open(os.path.join(root, "host/src/store/sqlite.rs")).read()
work = tempfile.TemporaryDirectory()
migs = [re.search(r'const %s: &str = "(.*?)";\n' % m, src, re.S).group(1).replace('\\"', '"') for m in ['MIG1','MIG2','MIG3','MIG4']]
db = sqlite3.connect(os.path.join(work.name, "traces.db"))
db.execute('PRAGMA journal_mode=WAL')
for m in migs:
    db.executescript(m)
random.seed(1)
N = 1_000_000
tenants = [f"t{i}" for i in range(10)]
pipelines = ["math-cascade", "math-race", "best-of", "single"]
outcomes = ["accepted"]*80 + ["rejected"]*10 + ["unverified"]*8 + ["failed"]*2
models = ["gpt-4", "mixtral", "small"]
t0 = time.time()
rows, tags = [], []
base = 1_760_000_000_000
for i in range(N):
    rid = f"{i:032x}"
    tenant = tenants[i % 10] if i % 10 else "t0"
    created = base + i * 30
    tg = ["billing"] if i % 2 == 0 else []
    if i % 997 == 0: tg.append("rare")
    rows.append((rid, tenant, random.choice(pipelines), created, random.uniform(50, 5000), random.uniform(0, 0.02), random.choice(outcomes), random.choice(models), None, "42", None, json.dumps(tg), None))
    for g in tg: tags.append((rid, tenant, g, created))
    if len(rows) == 100_000:
        db.executemany("INSERT INTO requests (id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO request_tags VALUES (?,?,?,?)", tags)
        db.commit(); rows, tags = [], []
print(f"seeded {N} in {time.time()-t0:.0f}s", file=sys.stderr)
print("| listing | rows | median ms | max ms (20 runs) | plan |")
print("|---|---|---|---|---|")
SEL = "SELECT r.id, r.pipeline, r.created_at, r.latency_ms, r.cost_usd, r.outcome, r.model, r.tags FROM "
mid = base + (N // 2) * 30
cases = {
 "first page": (SEL + "requests r WHERE r.tenant = ?1 ORDER BY r.created_at DESC, r.id DESC LIMIT ?2", ("t3", 51)),
 "page at the middle (cursor)": (SEL + "requests r WHERE r.tenant = ?1 AND (r.created_at, r.id) < (?2, ?3) ORDER BY r.created_at DESC, r.id DESC LIMIT ?4", ("t3", mid, "f"*32, 51)),
 "pipeline": (SEL + "requests r WHERE r.tenant = ?1 AND r.pipeline = ?2 ORDER BY r.created_at DESC, r.id DESC LIMIT ?3", ("t3", "math-race", 51)),
 "outcome failed (2%)": (SEL + "requests r WHERE r.tenant = ?1 AND r.outcome = ?2 ORDER BY r.created_at DESC, r.id DESC LIMIT ?3", ("t3", "failed", 51)),
 "tag billing (50%)": (SEL + "request_tags g JOIN requests r ON r.id = g.request_id WHERE g.tenant = ?1 AND g.tag = ?2 ORDER BY g.created_at DESC, g.request_id DESC LIMIT ?3", ("t4", "billing", 51)),
 "tag rare (0.1%)": (SEL + "request_tags g JOIN requests r ON r.id = g.request_id WHERE g.tenant = ?1 AND g.tag = ?2 ORDER BY g.created_at DESC, g.request_id DESC LIMIT ?3", ("t3", "rare", 51)),
 "model + time range": (SEL + "requests r WHERE r.tenant = ?1 AND r.model = ?2 AND r.created_at >= ?3 AND r.created_at < ?4 ORDER BY r.created_at DESC, r.id DESC LIMIT ?5", ("t3", "gpt-4", mid - 3_600_000, mid, 51)),
}
for name, (sql, p) in cases.items():
    times = []
    for _ in range(20):
        t = time.perf_counter(); n = len(db.execute(sql, p).fetchall()); times.append((time.perf_counter() - t) * 1e3)
    plan = "; ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, p))
    print(f"| {name} | {n} | {statistics.median(times):.2f} | {max(times):.2f} | {plan} |")
