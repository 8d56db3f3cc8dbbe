#!/usr/bin/env bash
# One replica on PostgreSQL against one on SQLite: the bench-peers harness (wrk,
# pass-through model, c=1 and c=16) against both in alternating rounds, one sitting.
# The PostgreSQL server is a throwaway one on the same machine (bench/pg-throwaway.sh,
# fsync on), fresh for each postgres round.
#
#   BENCH_PEERS=/path/to/bench-peers bench/store-backends.sh
#
# ROUNDS (default "sqlite postgres postgres sqlite sqlite postgres") picks the order.
# `postgres-spend` is a postgres round whose tenant has daily and monthly spend limits
# (too high to refuse): each model call then reserves in the shared spend counters.
# Results: one harness run per round under the harness's results folder (results.tsv).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_PEERS:?set BENCH_PEERS to the bench-peers folder (it has run.sh)}"
bin=${ARBITER_BIN:-$PWD/target/release/arbiter}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm-plugins}
for round in ${ROUNDS:-sqlite postgres postgres sqlite sqlite postgres}; do
  work=$(mktemp -d); chmod 755 "$work"
  config=$work/bench.toml
  # bench.toml with its relative paths made absolute.
  sed "s|\"\.\./|\"$PWD/|" config/bench.toml > "$config"
  key_arg="--api-key sk-test"
  case $round in
    sqlite) ;;
    postgres|postgres-spend)
      printf '\n[store]\nurl = "%s"\n' "$(bench/pg-throwaway.sh start "$work/pg")" >> "$config" ;;
    *) echo "unknown round $round" >&2; exit 2 ;;
  esac
  if [ "$round" = postgres-spend ]; then
    cat >> "$config" <<TOML

[tenants.bench]
api_keys = ["$("$bin" key hash sk-test)"]
policy = { models = ["*"], daily_spend_usd = 1000000.0, monthly_spend_usd = 1000000.0 }
TOML
    key_arg=""
  fi
  echo "=== round $round $(date -u +%T)"
  CUSTOM_NAME=arbiter-$round CUSTOM_MODEL=mock-model \
  CUSTOM_CMD="$bin serve --config $config --listen 127.0.0.1:18090 $key_arg --data-dir $work/data" \
  CUSTOM_URL=http://127.0.0.1:18090/v1/chat/completions CUSTOM_HEADERS='Authorization: Bearer sk-test' \
  TARGETS=direct STREAM_CONCURRENCY="" CONCURRENCY="1 16" DURATION=${DURATION:-5} SKIP_SETUP=1 \
    bash "$BENCH_PEERS/run.sh" 2>&1 | tail -12
  case $round in postgres*) bench/pg-throwaway.sh stop "$work/pg" ;; esac
  rm -rf "$work"
done
