#!/usr/bin/env python3
"""Sequential REST recall latency: POST /v1/recall/native with distinct questions.

usage: rest_recall_latency.py KEY [N] [BASE_URL]

Prints one JSON object: the number of requests, p50 and p95 in milliseconds, and which
vector searches answered (`semantic.search` of the responses). Five warm-up requests go
first. The standard library only.
"""
import json
import sys
import time
import urllib.request

WORDS = ("deploy budget review kubernetes billing invoice meeting travel dinner doctor "
         "garden recipe music").split()


def question(i):
    a, b = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)]
    return f"what did we say about the {a} and the {b} plan {i}"


def main():
    key = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    base = sys.argv[3] if len(sys.argv) > 3 else "http://127.0.0.1:8765"

    def call(i):
        req = urllib.request.Request(
            f"{base}/v1/recall/native",
            data=json.dumps({"query": question(i)}).encode(),
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
        t = time.perf_counter()
        with urllib.request.urlopen(req) as r:
            body = json.load(r)
        return (time.perf_counter() - t) * 1000, (body.get("semantic") or {}).get("search")

    for i in range(5):
        call(10_000 + i)
    results = [call(i) for i in range(n)]
    ms = sorted(x for x, _ in results)
    print(json.dumps({
        "requests": n,
        "p50_ms": round(ms[n // 2], 2),
        "p95_ms": round(ms[int(n * 0.95)], 2),
        "vector_search": sorted({s for _, s in results if s}),
    }))


if __name__ == "__main__":
    main()
