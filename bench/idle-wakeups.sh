#!/usr/bin/env bash
# What an idle gateway costs: wake-ups per second of each thread, and CPU time, while
# `arbiter serve` (config/bench.toml) sits with no traffic.
#
#   bench/idle-wakeups.sh [SECONDS] [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=${2:-}
if [[ -z $bin ]]; then
  cargo build --release -p arbiter
  bin=$PWD/target/release/arbiter
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
data=$(mktemp -d)
"$bin" serve --config config/bench.toml --listen 127.0.0.1:18094 --api-key sk-test \
  --data-dir "$data" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 3000); do curl -s -o /dev/null http://127.0.0.1:18094/healthz && break; sleep 0.1; done
sleep 1

# Context switches (voluntary + involuntary) per thread name, summed.
switches() {
  for t in /proc/$pid/task/*; do
    echo "$(tr ' ' _ <"$t/comm") $(awk '/^voluntary_ctxt/{v=$2} /^nonvoluntary_ctxt/{n=$2} END{print v+n}' "$t/status")"
  done | awk '{a[$1]+=$2} END{for (k in a) print k, a[k]}' | sort
}
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
before=$(switches); c0=$(cpu)
sleep "$secs"
after=$(switches); c1=$(cpu)
join <(echo "$before") <(echo "$after") |
  awk -v s="$secs" '$3 > $2 {printf "%-18s %8.1f wake-ups/s\n", $1, ($3-$2)/s}'
echo "CPU time in ${secs} s: $(( (c1 - c0) * 10 )) ms"
