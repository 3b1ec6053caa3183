#!/usr/bin/env bash
# Whether two builds of `continuum` give the same recall answers: a change meant to make
# recall faster must not change what it returns.
#
#   bash bench/wrk/same-answers.sh OLD_BINARY NEW_BINARY [COUNT]   # default 400 questions
#
# Builds the 10k-memory store of run.sh with OLD_BINARY, serves one copy with each binary, and
# asks both the same COUNT questions three times on /v1/recall and /v1/recall/native
# (same-answers.py), interleaved so that their clocks agree. Exits 1 if any answer differs.
# Needs curl and python3; about two minutes.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [COUNT]" >&2; exit 2; }
old=$1 new=$2 count=${3:-400}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for b in "$old" "$new"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 1; }; done
dir=$(mktemp -d /tmp/continuum-same.XXXXXX)
pids=""
trap '[ -z "$pids" ] || kill $pids 2> /dev/null; rm -rf "$dir"' EXIT
"$old" bench --sizes 10000 --queries 10 --single-turns 10 --dir "$dir/store" > /dev/null
KEY=$("$old" --data-dir "$dir/store" --tenant bench keys create --scope write 2> /dev/null)
export KEY
cp -r "$dir/store" "$dir/a"
cp -r "$dir/store" "$dir/b"
port_a=${PORT:-18471}
port_b=$((port_a + 1))
"$old" --data-dir "$dir/a" serve --bind 127.0.0.1:$port_a --rate 1000000 2> "$dir/a.log" &
pids="$!"
"$new" --data-dir "$dir/b" serve --bind 127.0.0.1:$port_b --rate 1000000 2> "$dir/b.log" &
pids="$pids $!"
for p in $port_a $port_b; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$p/v1/health" > /dev/null && break; sleep 0.2; done
done
python3 "$here/same-answers.py" "$count" $port_a $port_b
