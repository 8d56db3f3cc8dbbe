#!/usr/bin/env bash
# Arbiter's gateway overhead next to LiteLLM and Portkey, in one run of the bench-peers
# harness (wrk against a mock OpenAI upstream; wrk on CPU 0, gateway + mock on CPU 1).
#
#   BENCH_PEERS=/path/to/bench-peers bench/gateway-peers.sh [PIPELINE]
#
# PIPELINE (the `model` sent; pipelines in config/bench.toml):
#   mock-model           pass-through: one upstream call, traced, costed (default)
#   mock-verified        the answer judged by the Rust GSM8K verifier (warm instance)
#   mock-verified-fresh  the same with a fresh instance per call
# or floor:SERVER/CLIENT: bench/floor-proxy, a proxy with no logic (the floor under any
# gateway's overhead), e.g. floor:hyper/hyper, floor:axum/reqwest; see its source.
# Other knobs (DURATION, CONCURRENCY, TARGETS, ...) are the harness's own; see its README.
# Results: the harness prints a table and writes /tmp/peers/results/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_PEERS:?set BENCH_PEERS to the bench-peers folder (it has run.sh)}"
pipeline=${1:-mock-model}

if [[ $pipeline == floor:* ]]; then
  spec=${pipeline#floor:}
  (cd bench/floor-proxy && CARGO_TARGET_DIR=$PWD/../../target/floor-proxy cargo build --release)
  export CUSTOM_NAME=${CUSTOM_NAME:-floor-${spec/\//-}}
  export CUSTOM_CMD="$PWD/target/floor-proxy/release/floor-proxy --server ${spec%/*} --client ${spec#*/} --listen 127.0.0.1:18090 --upstream http://127.0.0.1:18080/v1/chat/completions"
  export CUSTOM_URL=http://127.0.0.1:18090/v1/chat/completions
  exec "$BENCH_PEERS/run.sh"
fi

cargo build --release -p arbiter
# Build the verifier now: the harness gives a gateway 60 s to answer.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
./target/release/arbiter plugin build plugins/gsm8k-verifier >/dev/null

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
export CUSTOM_NAME=${CUSTOM_NAME:-arbiter}
export CUSTOM_MODEL=$pipeline
export CUSTOM_CMD="$PWD/target/release/arbiter serve --config $PWD/config/bench.toml --listen 127.0.0.1:18090 --api-key sk-test --data-dir $data"
export CUSTOM_URL=http://127.0.0.1:18090/v1/chat/completions
export CUSTOM_HEADERS='Authorization: Bearer sk-test'
exec "$BENCH_PEERS/run.sh"
