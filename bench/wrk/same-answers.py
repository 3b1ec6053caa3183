"""Asks two running `continuum serve` processes the same recall questions, interleaved, and
counts the answers that differ. Used by same-answers.sh; see there.

    KEY=<api key> python3 bench/wrk/same-answers.py COUNT PORT_A PORT_B

Each of COUNT generated questions (questions.py's vocabulary, fixed seed) is asked three times,
so that the second and third answers come from kept scores, on both `/v1/recall` and
`/v1/recall/native`. The time taken and recency are left out of the comparison and other
numbers are compared to four decimals: both servers answer within milliseconds of each other,
but their clocks still move. Prints the first three differences and exits 1 if there are any.
"""

import http.client
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from questions import question  # noqa: E402

CLOCK_FIELDS = {"query_time_ms", "took_ms", "recency"}


def comparable(v):
    if isinstance(v, dict):
        return {k: comparable(x) for k, x in v.items() if k not in CLOCK_FIELDS}
    if isinstance(v, list):
        return [comparable(x) for x in v]
    if isinstance(v, float):
        return round(v, 4)
    return v


def ask(conn, key, path, body):
    conn.request("POST", path, json.dumps(body),
                 {"Content-Type": "application/json", "X-API-Key": key})
    answer = conn.getresponse()
    return answer.status, comparable(json.loads(answer.read()))


def main():
    count, port_a, port_b = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    key = os.environ["KEY"]
    a = http.client.HTTPConnection("127.0.0.1", port_a, timeout=600)
    b = http.client.HTTPConnection("127.0.0.1", port_b, timeout=600)
    rng = random.Random(11)
    questions = [question(rng) for _ in range(count)]
    same = differ = 0
    for _ in range(3):
        for q in questions:
            for path, body in (("/v1/recall", {"message": q, "max_concepts": 10}),
                               ("/v1/recall/native", {"query": q})):
                x, y = ask(a, key, path, body), ask(b, key, path, body)
                if x == y:
                    same += 1
                    continue
                differ += 1
                if differ <= 3:
                    print(f"differs: {path} {q!r}\n  A: {json.dumps(x)[:600]}\n"
                          f"  B: {json.dumps(y)[:600]}")
    print(f"{same} answers the same, {differ} different")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
