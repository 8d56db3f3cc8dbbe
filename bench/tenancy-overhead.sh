#!/usr/bin/env bash
# What tenancy costs per request: the bench-peers harness (wrk, pass-through model, c=1
# and c=16) against three gateways in alternating rounds, one sitting:
#   before  a build without tenancy (BEFORE_BIN, e.g. 0f52624)
#   open    this build, the `default` tenant (open policy: no limits to check)
#   quota   this build, a tenant whose policy has every limit set (rate, concurrency,
#           daily and monthly spend) high enough never to refuse, so each request
#           pays for every check and each model call for the spend reservation
#
#   BENCH_PEERS=/path/to/bench-peers BEFORE_BIN=/path/to/old/arbiter bench/tenancy-overhead.sh
#
# ROUNDS (default "before open quota quota open before") picks the order. Results: one
# harness run per round under /tmp/peers/results/<timestamp>/ (results.tsv).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_PEERS:?set BENCH_PEERS to the bench-peers folder (it has run.sh)}"
: "${BEFORE_BIN:?set BEFORE_BIN to an arbiter binary built before tenancy}"
after=${AFTER_BIN:-$PWD/target/release/arbiter}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
for round in ${ROUNDS:-before open quota quota open before}; do
  data=$(mktemp -d)
  config=$PWD/config/bench.toml
  key_arg="--api-key sk-test"
  bin=$after
  case $round in
    before) bin=$BEFORE_BIN ;;
    open) ;;
    quota)
      # bench.toml with its relative paths made absolute, plus the tenant.
      config=$data/bench-quota.toml
      sed "s|\"\.\./|\"$PWD/|" config/bench.toml > "$config"
      cat >> "$config" <<TOML

[tenants.bench]
api_keys = ["$("$after" key hash sk-test)"]
policy = { models = ["*"], requests_per_second = 1000000.0, burst = 1000000, max_concurrent = 100000, daily_spend_usd = 1000000.0, monthly_spend_usd = 1000000.0 }
TOML
      key_arg="" ;;
    *) echo "unknown round $round" >&2; exit 2 ;;
  esac
  echo "=== round $round $(date -u +%T)"
  CUSTOM_NAME=arbiter-$round CUSTOM_MODEL=mock-model \
  CUSTOM_CMD="$bin serve --config $config --listen 127.0.0.1:18090 $key_arg --data-dir $data" \
  CUSTOM_URL=http://127.0.0.1:18090/v1/chat/completions CUSTOM_HEADERS='Authorization: Bearer sk-test' \
  TARGETS=direct STREAM_CONCURRENCY="" CONCURRENCY="1 16" DURATION=${DURATION:-5} SKIP_SETUP=1 \
    bash "$BENCH_PEERS/run.sh" 2>&1 | tail -12
  rm -rf "$data"
done
