# Sourced by run.sh and recall-cpu.sh: builds the 10k-memory bench store in a temporary
# directory, creates a write key (exported as KEY) and starts `continuum serve` on $port with
# the per-key rate limit lifted. Sets dir, server and url; removes everything on exit.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${CONTINUUM_BIN:-$here/../../target/release/continuum}
[ -x "$bin" ] || bin=${CARGO_TARGET_DIR:-$here/../../target}/release/continuum
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d /tmp/continuum-load.XXXXXX)
url=http://127.0.0.1:$port
"$bin" bench --sizes 10000 --queries 10 --single-turns 10 --dir "$dir" > /dev/null
KEY=$("$bin" --data-dir "$dir" --tenant bench keys create --scope write 2> /dev/null)
export KEY
# SERVE_WRAP runs the server under another program (recall-instr.sh: valgrind).
# SERVE_ARGS: more `serve` arguments (split on spaces), e.g. "--no-metrics --log-level warn".
# shellcheck disable=SC2086
${SERVE_WRAP:-} "$bin" --data-dir "$dir" serve --bind 127.0.0.1:$port --rate 1000000 \
  ${SERVE_ARGS:-} 2> "$dir/serve.log" &
server=$!
trap 'kill $server 2> /dev/null; wait $server 2> /dev/null; rm -rf "$dir"' EXIT
for _ in $(seq "${SERVE_WAIT:-50}"); do curl -sf "$url/v1/health" > /dev/null && break; sleep 0.2; done
