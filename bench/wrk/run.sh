#!/usr/bin/env bash
# REST load benchmark: recall and learn requests per second and latency at 10k memories.
#
#   bash bench/wrk/run.sh [SECONDS]
#
# Builds a 10k-memory store with `continuum bench`, creates a write key, starts
# `continuum serve` (rate limit lifted) and runs wrk against it: recall alone, recall while one
# connection keeps learning, then learn alone. Needs target/release/continuum
# (`cargo build --release -p continuum-cli`) and wrk (`apt-get install wrk`).
set -euo pipefail
secs=${1:-15}
port=${PORT:-18421}
. "$(dirname "$0")/serve.sh"
# The first recall builds the tenant's index; keep it out of the figures.
curl -sf -X POST -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"message": "warm up"}' "$url/v1/recall" > /dev/null
echo "== POST /v1/recall, 16 connections"
wrk -t2 -c16 -d"${secs}s" --latency -s "$here/recall.lua" "$url"
echo "== POST /v1/recall, 15 connections, while 1 connection learns"
wrk -t1 -c1 -d"$((secs + 2))s" -s "$here/learn.lua" "$url" > "$dir/mixed-learn.txt" &
learner=$!
sleep 1
wrk -t2 -c15 -d"${secs}s" --latency -s "$here/recall.lua" "$url"
wait $learner
echo "-- the learning connection meanwhile:"
grep -E "Requests/sec|requests in" "$dir/mixed-learn.txt"
# Learning alone goes last: its tens of thousands of turns would otherwise grow the store the
# recall figures are measured on (and the next recall would first catch the index up on them).
echo "== POST /v1/learn, 16 connections"
wrk -t2 -c16 -d"${secs}s" --latency -s "$here/learn.lua" "$url"
echo "== server RSS: $(ps -o rss= -p $server) KB"
