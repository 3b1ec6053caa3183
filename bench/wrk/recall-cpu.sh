#!/usr/bin/env bash
# Recall under load, with the server's CPU time per request: the figure that moves least with
# this VM's CPU steal, for comparing one change with the next.
#
#   bash bench/wrk/recall-cpu.sh [SECONDS]          # default 10
#   PERF=1 bash bench/wrk/recall-cpu.sh 8           # also record a profile (perf.data here)
#
# Builds the same 10k-memory store as run.sh, starts `continuum serve` (rate limit lifted),
# warms it for 3 s, then runs wrk (2 threads, 16 connections, recall.lua) and reads the
# server's user + system time from /proc around the run. Needs target/release/continuum and
# wrk; PERF=1 needs perf (Debian's linux-perf).
set -euo pipefail
secs=${1:-10}
port=${PORT:-18422}
. "$(dirname "$0")/serve.sh"
wrk -t2 -c16 -d3s -s "$here/recall.lua" "$url" > /dev/null
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
profiler=""
if [ -n "${PERF:-}" ]; then
  perf record -F 999 ${PERF_CG:--g} -p "$server" -o perf.data -- sleep "$secs" > /dev/null 2>&1 &
  profiler=$!
fi
wrk -t2 -c16 -d"${secs}s" --latency -s "$here/recall.lua" "$url" | tee "$dir/wrk.txt" \
  | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx|requests in"
after=$(ticks)
[ -z "$profiler" ] || wait "$profiler"
n=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
awk -v t=$((after - before)) -v hz="$hz" -v n="$n" \
  'BEGIN { printf "server CPU per recall: %.0f us\n", t / hz * 1e6 / n }'
