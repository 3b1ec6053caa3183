#!/usr/bin/env python3
"""Event-log growth under learn/forget churn, and what compaction gives back.

Starts `continuum serve` on a fresh data directory, keeps about LIVE memories alive while it
learns turns in sessions and forgets whole old sessions (ROUNDS sessions of TURNS turns each),
then reports the store file's size and the number of events, before and after
`continuum events compact --min-age 0`.

    python3 bench/events/churn.py path/to/continuum [ROUNDS] [TURNS] [LIVE_SESSIONS]
"""
import http.client, json, os, re, subprocess, sys, tempfile, time

binary = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 400
turns = int(sys.argv[3]) if len(sys.argv) > 3 else 10
live = int(sys.argv[4]) if len(sys.argv) > 4 else 200

d = tempfile.mkdtemp(prefix="continuum-churn.")
run = lambda *a: subprocess.run([binary, "--data-dir", d, *a], check=True, capture_output=True, text=True).stdout
key = run("keys", "create", "--scope", "write").strip()
srv = subprocess.Popen([binary, "--data-dir", d, "serve", "--bind", "127.0.0.1:0", "--rate", "100000"],
                       stderr=subprocess.PIPE, text=True)
line = srv.stderr.readline()
host, port = re.search(r"http://([\d.]+):(\d+)", line).groups()
conn = http.client.HTTPConnection(host, int(port))
hdr = {"X-API-Key": key, "Content-Type": "application/json"}

def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return data

t0 = time.time()
for s in range(rounds):
    for t in range(turns):
        call("POST", "/v1/learn", {"user_message": f"Session {s} turn {t}: we moved the Kafka topic {t} to Redis stream {s % 17}.",
                                   "ai_response": f"Noted, topic {t} now flows through Redis; I'll watch the lag for {s}.",
                                   "session_id": f"s{s}"})
    if s >= live:
        call("DELETE", f"/v1/sessions/s{s - live}")
secs = time.time() - t0
srv.terminate(); srv.wait()

def checkpoint():
    import sqlite3
    db = sqlite3.connect(os.path.join(d, "continuum.db"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()

def size():
    checkpoint()
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith("continuum.db"))

stats = json.loads(run("--json", "stats"))
def count_events():
    import sqlite3
    with sqlite3.connect(os.path.join(d, "continuum.db")) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]

events_before = count_events()
size_before = size()
compacted = json.loads(run("--json", "events", "compact", "--min-age", "0"))
import sqlite3
db = sqlite3.connect(os.path.join(d, "continuum.db"))
db.execute("VACUUM")
db.close()
print(json.dumps({
    "rounds": rounds, "turns_per_session": turns, "live_sessions": live,
    "learned_turns": rounds * turns, "seconds": round(secs, 1),
    "live_memories": stats["memories"],
    "events_before_compaction": events_before,
    "bytes_before_compaction": size_before,
    "removed": compacted["removed"],
    "events_after_compaction": count_events(),
    "bytes_after_compaction_and_vacuum": size(),
}, indent=2))
