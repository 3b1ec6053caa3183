#!/usr/bin/env bash
# REST load benchmark: recall and learn requests per second and latency at 10k memories.
#
#   bash bench/wrk/run.sh [SECONDS]
#
# Builds a 10k-memory store with `continuum bench`, creates a write key, starts
# `continuum serve` (rate limit lifted) and runs wrk against it: recall alone, learn alone,
# then recall while one connection keeps learning. Needs target/release/continuum
# (`cargo build --release -p continuum-cli`) and wrk (`apt-get install wrk`).
set -euo pipefail
secs=${1:-15}
here=$(cd "$(dirname "$0")" && pwd)
bin=${CONTINUUM_BIN:-$here/../../target/release/continuum}
[ -x "$bin" ] || bin=${CARGO_TARGET_DIR:-/work/target}/release/continuum
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d /tmp/continuum-load.XXXXXX)
port=${PORT:-18421}
url=http://127.0.0.1:$port
"$bin" bench --sizes 10000 --queries 10 --single-turns 10 --dir "$dir" > /dev/null
KEY=$("$bin" --data-dir "$dir" --tenant bench keys create --scope write 2> /dev/null)
export KEY
"$bin" --data-dir "$dir" serve --bind 127.0.0.1:$port --rate 1000000 2> "$dir/serve.log" &
server=$!
trap 'kill $server 2> /dev/null; wait $server 2> /dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf "$url/v1/health" > /dev/null && break; sleep 0.2; done
# The first recall builds the tenant's index; keep it out of the figures.
curl -sf -X POST -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"message": "warm up"}' "$url/v1/recall" > /dev/null
echo "== POST /v1/recall, 16 connections"
wrk -t2 -c16 -d"${secs}s" --latency -s "$here/recall.lua" "$url"
echo "== POST /v1/learn, 16 connections"
wrk -t2 -c16 -d"${secs}s" --latency -s "$here/learn.lua" "$url"
echo "== POST /v1/recall, 15 connections, while 1 connection learns"
wrk -t1 -c1 -d"$((secs + 2))s" -s "$here/learn.lua" "$url" > "$dir/mixed-learn.txt" &
learner=$!
sleep 1
wrk -t2 -c15 -d"${secs}s" --latency -s "$here/recall.lua" "$url"
wait $learner
echo "-- the learning connection meanwhile:"
grep -E "Requests/sec|requests in" "$dir/mixed-learn.txt"
echo "== server RSS: $(ps -o rss= -p $server) KB"
