#!/usr/bin/env bash
# TLS against plain HTTP: what TLS costs per request on kept-alive connections, and what a new
# connection's handshake costs.
#
#   bash bench/wrk/tls.sh [SECONDS]
#
# Builds the 10k-memory bench store (serve.sh), serves it twice from one data directory: plain
# HTTP on $port and TLS (a self-signed ECDSA P-256 certificate made here with openssl) on
# $port+1. Then, each side in turn: POST /v1/recall on 16 kept-alive connections, and
# GET /v1/health with `Connection: close` (a new TCP connection, and for TLS a full handshake,
# per request). Finally `openssl s_time` counts full TLS handshakes per second from one client.
# Needs target/release/continuum, wrk and openssl.
set -euo pipefail
secs=${1:-10}
port=${PORT:-18431}
. "$(dirname "$0")/serve.sh"
tls_port=$((port + 1))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$dir/tls.key" -out "$dir/tls.crt" 2> /dev/null
"$bin" --data-dir "$dir" serve --bind 127.0.0.1:$tls_port --rate 1000000 \
  --tls-cert "$dir/tls.crt" --tls-key "$dir/tls.key" 2> "$dir/serve-tls.log" &
tls_server=$!
trap 'kill $server $tls_server 2> /dev/null; wait $server $tls_server 2> /dev/null; rm -rf "$dir"' EXIT
tls_url=https://127.0.0.1:$tls_port
for _ in $(seq 50); do curl -sfk "$tls_url/v1/health" > /dev/null && break; sleep 0.2; done
for u in "$url" "$tls_url"; do
  curl -sfk -X POST -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    -d '{"message": "warm up"}' "$u/v1/recall" > /dev/null
done
for u in "$url" "$tls_url"; do
  echo "== $u POST /v1/recall, 16 kept-alive connections"
  wrk -t2 -c16 -d"${secs}s" --latency -s "$here/recall.lua" "$u" | grep -E "Requests/sec|50%|99%"
done
for u in "$url" "$tls_url"; do
  echo "== $u GET /v1/health, a new connection per request, 16 at a time"
  wrk -t2 -c16 -d"${secs}s" --latency -H "Connection: close" "$u/v1/health" \
    | grep -E "Requests/sec|50%|99%|Socket errors"
done
echo "== openssl s_time: full TLS handshakes, one client"
openssl s_time -connect 127.0.0.1:$tls_port -new -time "$secs" 2> /dev/null | grep -E "connections in|connections/user"
