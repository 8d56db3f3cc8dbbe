#!/usr/bin/env bash
# CPU per request of the gateway (or of the floor proxy), split by thread, with the
# syscalls and context switches each request costs. Load on CPU 0 (wrk), the mock
# upstream and the target on CPU 1, as in bench/floor-ratio.sh. CPU time per request
# drifts less with the machine's speed than req/s does, but still compare in
# alternating runs.
#
#   BENCH_PEERS=/path/to/bench-peers bench/cpu-per-request.sh            # the gateway
#   TARGET=floor BENCH_PEERS=... bench/cpu-per-request.sh                # the floor proxy
#
# MODEL [mock-model] (mock-verified: the Rust verifier), CONC [16], SECS [8],
# CONFIG [config/bench.toml], BIN [target/release/arbiter], MOCK [the mock upstream that
# bench-peers' setup.sh builds, /tmp/peers/mock-target/release/mock-upstream]. Build
# first: floor-ratio.sh builds the gateway and the floor proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_PEERS:?set BENCH_PEERS to the bench-peers folder (it has post.lua)}"
MODEL=${MODEL:-mock-model}; CONC=${CONC:-16}; SECS=${SECS:-8}; TARGET=${TARGET:-gateway}
BIN=${BIN:-$PWD/target/release/arbiter}; CONFIG=${CONFIG:-config/bench.toml}
MOCK=${MOCK:-/tmp/peers/mock-target/release/mock-upstream}
data=$(mktemp -d); log=$data/target.log; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

taskset -c 1 "$MOCK" --addr 127.0.0.1:18080 --threads 1 >/dev/null 2>&1 & pids+=($!)
if [ "$TARGET" = floor ]; then
  taskset -c 1 target/floor-proxy/release/floor-proxy --server hyper --client hyper \
    --listen 127.0.0.1:18090 --upstream http://127.0.0.1:18080/v1/chat/completions >"$log" 2>&1 & pids+=($!)
  sleep 1
else
  taskset -c 1 "$BIN" serve --config "$CONFIG" --listen 127.0.0.1:18090 --api-key sk-test \
    --data-dir "$data/store" >"$log" 2>&1 & pids+=($!)
  for _ in $(seq 600); do grep -q "Arbiter listening" "$log" && break; sleep 0.2; done
fi
pid=${pids[1]}
export BODY="{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}],\"max_tokens\":16}"
export HEADERS="Authorization: Bearer sk-test"
url=http://127.0.0.1:18090/v1/chat/completions
taskset -c 0 wrk -t1 -c16 -d3s -s "$BENCH_PEERS/post.lua" "$url" >/dev/null # warm-up

# Per thread name: user+system ticks and context switches.
threads() {
  for t in /proc/"$pid"/task/*; do
    echo "$(tr ' ' _ <"$t/comm") $(awk '{print $14+$15}' "$t/stat") $(awk '/ctxt_switches/ {s+=$2} END {print s}' "$t/status")"
  done | awk '{cpu[$1]+=$2; cs[$1]+=$3} END {for (k in cpu) print k, cpu[k], cs[k]}' | sort
}
threads >"$data/before"
perf stat -e raw_syscalls:sys_enter -p "$pid" -o "$data/perf" -- sleep "$((SECS - 1))" 2>/dev/null & pstat=$!
out=$(taskset -c 0 wrk -t1 -c"$CONC" -d"${SECS}s" -s "$BENCH_PEERS/post.lua" "$url" | grep RESULT)
threads >"$data/after"
wait "$pstat" || true

python3 - "$data" "$out" "$(getconf CLK_TCK)" "$TARGET" "$MODEL" "$CONC" "$SECS" <<'PY'
import re, sys
data, out, tck, target, model, conc, secs = sys.argv[1:]
tck, secs = int(tck), int(secs)
vals = dict(kv.split("=") for kv in out.split()[1:])
n, rps = int(vals["requests"]), float(vals["rps"])
read = lambda f: {l.split()[0]: (int(l.split()[1]), int(l.split()[2])) for l in open(f"{data}/{f}")}
a, b = read("before"), read("after")
m = re.search(r"([\d,]+)\s+raw_syscalls", open(f"{data}/perf").read())
syscalls = int(m.group(1).replace(",", "")) / (rps * (secs - 1)) if m else float("nan")
total = sum(b[k][0] - a.get(k, (0, 0))[0] for k in b) / tck / n * 1e6
print(f"{target} {model} c={conc}: {rps:.0f} req/s, {total:.1f} us CPU/request, {syscalls:.1f} syscalls/request")
for k in sorted(b):
    cpu = (b[k][0] - a.get(k, (0, 0))[0]) / tck / n * 1e6
    cs = (b[k][1] - a.get(k, (0, 0))[1]) / n
    if cpu > 0 or cs > 0.001:
        print(f"  {k:18} {cpu:6.1f} us/request  {cs:5.2f} context switches/request")
PY
