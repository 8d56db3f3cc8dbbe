#!/usr/bin/env bash
# Alternating rounds of bench/store-backends.sh, one binary per round: BIN_DIR holds
# arbiter-<name> for each name below (release builds of the commits BENCHMARKS.md names).
#   BIN_DIR=/path/to/binaries BENCH_PEERS=/path/to/bench-peers bash THIS_FILE
cd "$(dirname "$0")/../../.."
for pair in new:sqlite fix3:sqlite fix3:sqlite new:sqlite new:sqlite fix3:sqlite; do
  b=${pair%%:*}; r=${pair#*:}
  echo "=== $b $r $(date -u +%T)"
  ARBITER_BIN=${BIN_DIR:?}/arbiter-$b ROUNDS=$r bench/store-backends.sh 2>&1 | grep -E "^arbiter-"
done
echo AB_DONE
