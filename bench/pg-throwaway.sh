#!/usr/bin/env bash
# A throwaway PostgreSQL server for benchmarks (what the tests' store::test_cluster does):
#   url=$(bench/pg-throwaway.sh start /tmp/pg)    # prints postgres://arbiter@127.0.0.1:PORT/postgres
#   bench/pg-throwaway.sh stop /tmp/pg             # stops it and removes the folder
# fsync stays on (a benchmark should pay for durable commits, as production does).
# As root the server runs as the `postgres` user, since PostgreSQL refuses root.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?folder}
bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
case $cmd in
  start)
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U arbiter --auth=trust -E UTF8 --no-locale >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    echo "postgres://arbiter@127.0.0.1:$port/postgres" ;;
  stop)
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
