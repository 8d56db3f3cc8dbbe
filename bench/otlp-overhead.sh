#!/usr/bin/env bash
# What exporting spans over OTLP costs per request: the bench-peers harness (wrk,
# pass-through model, c=1 and c=16) against one gateway binary in alternating rounds:
#   off  config/bench.toml as is (no [telemetry]: no exporter, spans disabled)
#   on   the same plus [telemetry] exporting http/protobuf to a local sink that answers
#        every export with 200 (bench/otlp-sink.py), so the gateway builds, batches,
#        encodes and sends every span
#
#   BENCH_PEERS=/path/to/bench-peers bench/otlp-overhead.sh
#
# ROUNDS (default "off on on off off on") picks the order. Each `on` round prints how
# many export requests and bytes the sink received, to show the spans went out.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_PEERS:?set BENCH_PEERS to the bench-peers folder (it has run.sh)}"
bin=${ARBITER_BIN:-$PWD/target/release/arbiter}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
sink_port=${SINK_PORT:-14318}
for round in ${ROUNDS:-off on on off off on}; do
  data=$(mktemp -d)
  config=$PWD/config/bench.toml
  sink=""
  case $round in
    off) ;;
    on)
      config=$data/bench-otlp.toml
      sed "s|\"\.\./|\"$PWD/|" config/bench.toml > "$config"
      cat >> "$config" <<TOML

[telemetry]
otlp_endpoint = "http://127.0.0.1:$sink_port"
otlp_protocol = "http"
TOML
      python3 bench/otlp-sink.py "$sink_port" "$data/sink.log" &
      sink=$! ;;
    *) echo "unknown round $round" >&2; exit 2 ;;
  esac
  echo "=== round $round $(date -u +%T)"
  CUSTOM_NAME=arbiter-otlp-$round CUSTOM_MODEL=mock-model \
  CUSTOM_CMD="$bin serve --config $config --listen 127.0.0.1:18090 --api-key sk-test --data-dir $data" \
  CUSTOM_URL=http://127.0.0.1:18090/v1/chat/completions CUSTOM_HEADERS='Authorization: Bearer sk-test' \
  TARGETS=direct STREAM_CONCURRENCY="" CONCURRENCY="1 16" DURATION=${DURATION:-5} SKIP_SETUP=1 \
    bash "$BENCH_PEERS/run.sh" 2>&1 | tail -12
  if [ -n "$sink" ]; then
    kill "$sink" 2>/dev/null || true
    wait "$sink" 2>/dev/null || true
    echo "sink: $(cat "$data/sink.log" 2>/dev/null || echo 'no exports')"
  fi
  rm -rf "$data"
done
