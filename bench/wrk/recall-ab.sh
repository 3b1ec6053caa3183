#!/usr/bin/env bash
# Two builds of `continuum` compared under the same recall load, alternated on one store, so
# that this VM's changes of speed (up to 40% within a minute) fall on both alike.
#
#   bash bench/wrk/recall-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]   # default 6 rounds of 5 s
#   MIXED=1 bash bench/wrk/recall-ab.sh OLD NEW [ROUNDS] [SECONDS]          # recall beside a learner
#   OLD_ARGS="--no-metrics --log-level warn" bash bench/wrk/recall-ab.sh BIN BIN   # one build, two setups
#
# OLD_ARGS and NEW_ARGS are extra `serve` arguments for each side (split on spaces); with the
# same binary on both sides they measure a setting's cost, e.g. logging and metrics.
#
# Builds the 10k-memory store of run.sh once with NEW_BINARY. Each round then starts the old
# server and the new one in turn (rate limit lifted), warms it for 3 s, and runs wrk (2 threads,
# 16 connections, recall.lua), reading the server's user + system time from /proc. It prints
# one line per run and the mean of each build. Needs wrk and curl. Rounds alternate which
# build goes first (an A/A run with one build on both sides measured the second slot 5% slower
# on 2026-12-06), so use an even number of rounds.
#
# With MIXED=1 each run works on a fresh copy of the store (a learner adds thousands of turns a
# run), recall gets 15 connections while one more keeps learning (learn.lua), and the server's
# CPU is divided by recalls and learns together.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]" >&2; exit 2; }
old=$1 new=$2 rounds=${3:-6} secs=${4:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
for b in "$old" "$new"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 1; }; done
dir=$(mktemp -d /tmp/continuum-ab.XXXXXX)
server=""
trap '[ -z "$server" ] || kill $server 2> /dev/null; rm -rf "$dir"' EXIT
store=$dir/store
"$new" bench --sizes 10000 --queries 10 --single-turns 10 --dir "$store" > /dev/null
KEY=$("$new" --data-dir "$store" --tenant bench keys create --scope write 2> /dev/null)
export KEY
hz=$(getconf CLK_TCK)
per=recall
[ -z "${MIXED:-}" ] || per=request
port=${PORT:-18440}
for r in $(seq "$rounds"); do
  # Alternate which build runs first: the second server of a round measured about 5% more
  # CPU per recall even when both sides ran the same binary with the same flags.
  order="old new"
  [ $((r % 2)) -eq 0 ] && order="new old"
  for which in $order; do
    bin=$old
    args=${OLD_ARGS:-}
    if [ "$which" = new ]; then
      bin=$new
      args=${NEW_ARGS:-}
    fi
    url=http://127.0.0.1:$port
    data=$store
    conns=16
    if [ -n "${MIXED:-}" ]; then
      data=$dir/run
      rm -rf "$data"
      cp -r "$store" "$data"
      conns=15
    fi
    # shellcheck disable=SC2086 # $args is a list of arguments
    "$bin" --data-dir "$data" serve --bind 127.0.0.1:$port --rate 1000000 $args 2> "$dir/serve.log" &
    server=$!
    for _ in $(seq 50); do curl -sf "$url/v1/health" > /dev/null && break; sleep 0.2; done
    wrk -t2 -c16 -d3s -s "$here/recall.lua" "$url" > /dev/null
    learner=""
    if [ -n "${MIXED:-}" ]; then
      wrk -t1 -c1 -d"$((secs + 2))s" -s "$here/learn.lua" "$url" > "$dir/learn.txt" &
      learner=$!
      sleep 1
    fi
    before=$(awk '{print $14 + $15}' "/proc/$server/stat")
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/recall.lua" "$url")
    after=$(awk '{print $14 + $15}' "/proc/$server/stat")
    learned=0
    if [ -n "$learner" ]; then
      wait "$learner"
      # The learner ran secs + 2 s; count the share that fell in the measured secs.
      learned=$(awk -v s="$secs" '/requests in/ {d = $4; sub("s,", "", d); printf "%.0f", $1 * s / d}' "$dir/learn.txt")
    fi
    kill "$server"
    wait "$server" 2> /dev/null || true
    server=""
    port=$((port + 1))
    n=$(awk '/requests in/ {print $1}' <<< "$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    errors=$(awk '/Non-2xx/ {print $NF} /Socket errors/ {print}' <<< "$out")
    us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$((n + learned))" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
    beside=""
    [ -z "$learner" ] || beside=", learner $(awk '/Requests\/sec/ {print $2}' "$dir/learn.txt") turns/s"
    echo "round $r $which: $rps requests/s, p99 $p99$beside, server CPU per $per $us us${errors:+, errors: $errors}"
  done
done | tee "$dir/runs.txt"
awk -v per="$per" '{ w = $3; sub(":", "", w); rps[w] += $4; us[w] += $(NF - 1); n[w]++ }
  END { for (w in n) printf "%s: mean %.0f recall requests/s, %.0f us of server CPU per %s\n", w, rps[w] / n[w], us[w] / n[w], per }' \
  "$dir/runs.txt" | sort -r
