#!/usr/bin/env python3
"""`serve`'s resident memory under steady learn + forget, and after it goes idle.

Starts `continuum serve` on a fresh data directory and, for SECONDS, learns turns over REST in
sessions of TURNS while forgetting the oldest session whenever more than LIVE are kept (so
about LIVE x TURNS x 2 memories stay alive), with a recall after every session. Samples the
server's RSS (VmRSS) every 5 s, then leaves it idle for IDLE seconds and samples again.
Prints one JSON object: samples, and the RSS at start, peak, end of churn and end of idle.

    python3 bench/memory/churn_rss.py path/to/continuum [SECONDS] [TURNS] [LIVE] [IDLE]
"""
import http.client, json, re, subprocess, sys, tempfile, threading, time

binary = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 600
turns = int(sys.argv[3]) if len(sys.argv) > 3 else 10
live = int(sys.argv[4]) if len(sys.argv) > 4 else 200
idle = float(sys.argv[5]) if len(sys.argv) > 5 else 60

d = tempfile.mkdtemp(prefix="continuum-rss.")
run = lambda *a: subprocess.run([binary, "--data-dir", d, *a], check=True, capture_output=True, text=True).stdout
key = run("keys", "create", "--scope", "write").strip()
srv = subprocess.Popen([binary, "--data-dir", d, "serve", "--bind", "127.0.0.1:0", "--rate", "100000"],
                       stderr=subprocess.PIPE, text=True)
line = srv.stderr.readline()
host, port = re.search(r"http://([\d.]+):(\d+)", line).groups()
# Keep reading the server's log so that it never blocks on a full pipe.
threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
conn = http.client.HTTPConnection(host, int(port))
hdr = {"X-API-Key": key, "Content-Type": "application/json"}


def rss_mb():
    with open(f"/proc/{srv.pid}/status") as f:
        kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return round(kb / 1024, 1)


def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return data


samples = [(0.0, rss_mb())]
t0 = last = time.time()
s = 0
while time.time() - t0 < seconds:
    for t in range(turns):
        call("POST", "/v1/learn", {
            "user_message": f"Session {s} turn {t}: we moved the Kafka topic {t} to Redis stream {s % 17}; ticket {s * 31 + t}.",
            "ai_response": f"Noted, topic {t} now flows through Redis; I'll watch the lag for run {s}-{t}.",
            "session_id": f"s{s}"})
    call("POST", "/v1/recall", {"message": f"What happened to the Kafka topic {s % turns} in stream {s % 17}?"})
    if s >= live:
        call("DELETE", f"/v1/sessions/s{s - live}")
    s += 1
    if time.time() - last >= 5:
        last = time.time()
        samples.append((round(last - t0, 1), rss_mb()))
end_churn = rss_mb()
time.sleep(idle)
end_idle = rss_mb()
srv.terminate()
srv.wait()
print(json.dumps({
    "seconds": seconds, "sessions": s, "turns_per_session": turns, "live_sessions": live,
    "rss_mb": {"start": samples[0][1], "peak": max(r for _, r in samples),
               "end_of_churn": end_churn, "after_idle": end_idle, "idle_seconds": idle},
    "samples": samples,
}))
