#!/usr/bin/env bash
# Instructions the server executes per recall, counted by valgrind's callgrind: unlike time,
# the count repeats to a fraction of a percent whatever else this shared VM is doing, so it
# tells whether a change made a recall cheaper. It does not see cache misses or lock waits:
# confirm a gain in time with recall-cpu.sh.
#
#   bash bench/wrk/recall-instr.sh [COUNT]     # default 300 questions
#
# Builds the same 10k-memory store as run.sh, starts `continuum serve` under callgrind, asks
# COUNT questions (bench/wrk/questions.py, fixed seed) to build the index and fill the read
# cache, zeroes the counters, asks the same questions again and prints instructions per
# recall. The profile is left in callgrind.out (callgrind_annotate callgrind.out). Needs
# valgrind and python3; about 30 s.
set -euo pipefail
count=${1:-300}
port=${PORT:-18424}
SERVE_WRAP="valgrind --tool=callgrind --callgrind-out-file=callgrind.out.%p"
SERVE_WAIT=300
. "$(dirname "$0")/serve.sh"
python3 "$here/questions.py" "$count" "$port" > /dev/null
callgrind_control -z "$server" > /dev/null
python3 "$here/questions.py" "$count" "$port"
callgrind_control -d "$server" > /dev/null
kill "$server"
wait "$server" 2> /dev/null || true
# The dump asked for above is callgrind.out.PID.1; the one written at exit is not wanted.
mv "callgrind.out.$server.1" callgrind.out
rm -f "callgrind.out.$server"
total=$(awk '/^(summary|totals):/ {print $2; exit}' callgrind.out)
echo "instructions per recall: $((total / count)) ($total over $count recalls)"
