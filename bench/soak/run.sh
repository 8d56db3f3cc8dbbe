#!/usr/bin/env bash
# Fault-injection soak: the gateway (release build) in front of a failing upstream, with
# hostile plugins, under C concurrent clients for N seconds. See soak.rs for the faults and
# the mix. Usage: bench/soak/run.sh [seconds=600] [concurrency=64]
# Writes bench/results/<date>/soak/{report.json,gateway.log,upstream-faults.json}.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-600}
conc=${2:-64}
out=bench/results/$(date -u +%F)/soak
mkdir -p "$out"

(cd tests/guests && cargo build --release --target wasm32-wasip2 -q)
cargo build --release -q -p arbiter --bin arbiter --example soak

tmp=$(mktemp -d)
target/release/examples/soak upstream --listen 127.0.0.1:18181 &
up=$!
RUST_LOG=warn target/release/arbiter serve --config bench/soak/soak.toml \
  --data-dir "$tmp" --api-key sk-soak 2>"$out/gateway.log" &
gw=$!
trap 'kill $up $gw 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 300); do
  curl -sf http://127.0.0.1:18190/readyz >/dev/null && break
  sleep 1
done

target/release/examples/soak load --url http://127.0.0.1:18190 --key sk-soak --pid "$gw" \
  --seconds "$secs" --concurrency "$conc" >"$out/report.json"
curl -s http://127.0.0.1:18181/counts >"$out/upstream-faults.json"
kill -0 "$gw" || { echo "the gateway died" >&2; exit 1; }
panics=$(grep -c "panicked" "$out/gateway.log" || true)
python3 - "$out/report.json" "$panics" <<'PY'
import json, sys
path, panics = sys.argv[1], int(sys.argv[2])
report = json.load(open(path))
report["gateway_panics_logged"] = panics
json.dump(report, open(path, "w"), indent=2)
print(json.dumps(report, indent=2))
PY
