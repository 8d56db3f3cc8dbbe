#!/usr/bin/env bash
# Arbiter's throughput as a share of the floor (bench/floor-proxy, a hyper/hyper proxy
# with no logic), in rounds that alternate the three, so drift in the machine's speed
# hits all of them alike: in each round the floor, the pass-through (`mock-model`) and the
# Rust verifier (`mock-verified`) are measured one after another at each concurrency,
# and the report is the median over rounds of each round's ratio.
#
#   BENCH_PEERS=/path/to/bench-peers bench/floor-ratio.sh
#
# ROUNDS [3], CONCURRENCY ["16 64"], DURATION [10] seconds per measurement. Results:
# OUT [/tmp/floor-ratio-<time>]/<round>-<target>/results.tsv and a summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_PEERS:?set BENCH_PEERS to the bench-peers folder (it has run.sh)}"
rounds=${ROUNDS:-3}
out=${OUT:-/tmp/floor-ratio-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"

(cd bench/floor-proxy && CARGO_TARGET_DIR=$PWD/../../target/floor-proxy cargo build -q --release)
cargo build -q --release -p arbiter
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
./target/release/arbiter plugin build plugins/gsm8k-verifier >/dev/null
floor="$PWD/target/floor-proxy/release/floor-proxy --server hyper --client hyper --listen 127.0.0.1:18090 --upstream http://127.0.0.1:18080/v1/chat/completions"

measure() { # round target command model
  local data
  data=$(mktemp -d)
  echo "=== round $1 $2 $(date -u +%T)"
  CUSTOM_NAME=$2 CUSTOM_MODEL=$4 CUSTOM_CMD=${3//@DATA@/$data} \
  CUSTOM_URL=http://127.0.0.1:18090/v1/chat/completions CUSTOM_HEADERS='Authorization: Bearer sk-test' \
  TARGETS=" " STREAM_CONCURRENCY="" CONCURRENCY=${CONCURRENCY:-"16 64"} DURATION=${DURATION:-10} \
  SKIP_SETUP=1 RESULTS_DIR="$out/$1-$2" \
    bash "$BENCH_PEERS/run.sh" >"$out/$1-$2.log" 2>&1 || echo "round $1 $2 failed: $out/$1-$2.log"
  rm -rf "$data"
}

gateway="$PWD/target/release/arbiter serve --config $PWD/config/bench.toml --listen 127.0.0.1:18090 --api-key sk-test --data-dir @DATA@"
for r in $(seq 1 "$rounds"); do
  measure "$r" floor "$floor" mock-model
  measure "$r" pass-through "$gateway" mock-model
  measure "$r" verified "$gateway" mock-verified
done

python3 - "$out" "$rounds" <<'PY'
import csv, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rps = {}
for r in range(1, rounds + 1):
    for t in ("floor", "pass-through", "verified"):
        try:
            rows = csv.DictReader(open(f"{out}/{r}-{t}/results.tsv"), delimiter="\t")
            for row in rows:
                rps[(r, t, int(row["conc"]))] = float(row["rps"])
        except FileNotFoundError:
            pass
concs = sorted({c for (_, _, c) in rps})
print(f"{'c':>4} {'target':>13} " + " ".join(f"round {r:>2}" for r in range(1, rounds + 1)) + "   median")
for c in concs:
    for t in ("pass-through", "verified"):
        ratios = [rps[(r, t, c)] / rps[(r, "floor", c)] for r in range(1, rounds + 1)
                  if (r, t, c) in rps and (r, "floor", c) in rps]
        cells = " ".join(f"{x:8.2f}" for x in ratios)
        print(f"{c:>4} {t:>13} {cells}   {statistics.median(ratios):6.2f}" if ratios else f"{c:>4} {t:>13} (no data)")
print("ratios: the target's req/s over the floor's in the same round")
PY
