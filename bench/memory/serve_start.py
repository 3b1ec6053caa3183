#!/usr/bin/env python3
"""How soon a restarted `serve` answers, and what it holds once warm.

Starts `continuum serve` on an existing data directory (e.g. one kept by
`continuum bench --sizes 1000000 --dir DIR`), sends a recall as soon as it listens, and
reports: seconds from starting the process to that first answer, the first recall's own
latency, the median of 20 more, and the server's RSS (VmRSS) after them.

    python3 bench/memory/serve_start.py path/to/continuum DATA_DIR [TENANT] [extra global flags...]
"""
import http.client, json, re, statistics, subprocess, sys, threading, time

binary, data = sys.argv[1], sys.argv[2]
tenant = sys.argv[3] if len(sys.argv) > 3 else "bench"
extra = sys.argv[4:]
key = subprocess.run([binary, "--data-dir", data, "--tenant", tenant, "keys", "create", "--scope", "write"],
                     check=True, capture_output=True, text=True).stdout.strip()
t0 = time.time()
srv = subprocess.Popen([binary, "--data-dir", data, *extra, "serve", "--bind", "127.0.0.1:0", "--rate", "100000"],
                       stderr=subprocess.PIPE, text=True)
while True:
    line = srv.stderr.readline()
    if not line:
        raise SystemExit("the server exited")
    m = re.search(r"http://([\d.]+):(\d+)", line)
    if m and "listening" in line:
        break
listening = time.time() - t0
# Keep reading the server's log so that it never blocks on a full pipe.
threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
conn = http.client.HTTPConnection(m.group(1), int(m.group(2)))
hdr = {"X-API-Key": key, "Content-Type": "application/json"}
questions = ["What did Priya say about the Kafka migration?", "Which dashboards did Omar build in Grafana?",
             "When did Sofia move the service to Kubernetes?", "What broke in the Redis cluster last week?"]


def recall(q):
    t = time.time()
    conn.request("POST", "/v1/recall", json.dumps({"message": q}), hdr)
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
    return time.time() - t


first = recall(questions[0])
answered = time.time() - t0
later = [recall(questions[i % len(questions)]) for i in range(1, 21)]
with open(f"/proc/{srv.pid}/status") as f:
    rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
srv.terminate()
srv.wait()
print(json.dumps({"listening_s": round(listening, 3), "first_answer_s": round(answered, 3),
                  "first_recall_s": round(first, 3), "recall_p50_ms": round(statistics.median(later) * 1000, 2),
                  "rss_mb": round(rss, 1)}))
