#!/usr/bin/env bash
# Start-up with a large trace store: a store of N pass-through requests (default one
# million, a year old) is made once, then `arbiter serve` is started on a copy of it and
# the time to a ready /healthz is measured. With RETENTION_DAYS set, it also reports how
# long the writer takes to delete the expired requests after start.
#
#   bench/store-startup.sh [N]
#   RETENTION_DAYS=30 bench/store-startup.sh
#   BIN=/path/to/an/older/arbiter bench/store-startup.sh   # the same store, another build
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
bin=${BIN:-}
if [[ -z $bin ]]; then
  cargo build --release -p arbiter
  bin=$PWD/target/release/arbiter
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
work=${WORK:-$PWD/target/store-startup}
mkdir -p "$work"
config=config/bench.toml
if [[ -n ${RETENTION_DAYS:-} ]]; then
  config=$work/retention.toml
  { echo "[server]"; echo "trace_retention_days = $RETENTION_DAYS"
    sed '1,/^\[server\]/{/^\[server\]/d}' config/bench.toml | sed "s#\"\.\./#\"$PWD/#g"; } >"$config"
fi

serve() { # serve DATA_DIR: starts the gateway ($pid); $ready is seconds to a ready /healthz
  local t0; t0=$(date +%s.%N)
  "$bin" serve --config "$config" --listen 127.0.0.1:18095 --api-key sk-test --data-dir "$1" \
    >"$work/serve.log" 2>&1 &
  pid=$!
  until curl -s -o /dev/null http://127.0.0.1:18095/healthz; do
    kill -0 $pid 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.02
  done
  ready=$(echo "$(date +%s.%N) - $t0" | bc)
}

# The template: a store made by Arbiter itself (its schema), then filled in bulk.
template=$work/store-$n
if [[ ! -f $template/traces.db ]]; then
  mkdir -p "$template"
  serve "$template"; kill $pid; wait $pid || true
  python3 - "$template/traces.db" "$n" <<'PY'
import json, sqlite3, sys, time, uuid
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
year_ago = int(time.time() * 1000) - 365 * 86_400_000
text = "Hello! How can I help you today? This is a mock answer."
record = {"seq": 0, "node": "root", "kind": "model", "model": "mock-model",
          "started_ms": 0.01, "latency_ms": 0.2, "input_tokens": 12, "output_tokens": 14,
          "cost_usd": 1.2e-05, "outcome": "accepted", "text": text}
for start in range(0, n, 10_000):
    ids = [str(uuid.UUID(int=(i << 64) | 1)) for i in range(start, min(n, start + 10_000))]
    db.executemany("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   [(r, "default", "mock-model", year_ago + i, 0.21, 1.2e-05, "accepted",
                     "mock-model", None, text, None, "[]") for i, r in enumerate(ids, start)])
    db.executemany("INSERT INTO attempts VALUES (?,?,?,?,?,?,?)",
                   [(r, 0, json.dumps(record), "mock-model", "accepted", 0.2, 1.2e-05) for r in ids])
    db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
fi
echo "store: $n requests, $(du -m "$template/traces.db" | cut -f1) MB"

run=$work/run
rm -rf "$run"; cp -a "$template" "$run"
t0=$(date +%s.%N)
serve "$run"
echo "ready after $ready s"
if [[ -n ${RETENTION_DAYS:-} ]]; then
  count() { python3 -c "import sqlite3,sys; print(sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True).execute('select count(*) from requests').fetchone()[0])" "$run/traces.db"; }
  until [[ $(count) == 0 ]]; do sleep 0.5; done
  echo "expired requests deleted $(echo "$(date +%s.%N) - $t0" | bc) s after launch"
fi
kill $pid; wait $pid || true
