#!/usr/bin/env bash
# bench/mutations — row changes and merge-on-read, on loopback:
#   upserts/s   POST /datasets/bench/rows with one upserted row each (a random existing key,
#               one field changed), one keep-alive client, REPS_UPSERT requests: each is a
#               delta file, an events batch and a manifest version (fsync'd)
#   queries     a point lookup by key and a full aggregate over the dataset, POST /query
#               latency (median of REPS) after 0, 10 and 100 commits of 100 upserted rows
#               each, and after POST /datasets/bench/compact — the compacted table is the
#               baseline the merged view is compared with (ratio = merged / compacted)
# The dataset has ROWS rows (default 1,000,000; id BIGINT primary key, name, score, city).
# Automatic compaction is off for the run. Never fails on speed.
# usage: run.sh BUILD_DIR     env: ROWS (default 1000000), REPS (default 15),
#        REPS_UPSERT (default 200)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rows=${ROWS:-1000000}
reps=${REPS:-15}
reps_upsert=${REPS_UPSERT:-200}
threads=4
. "$here/../common/lib.sh"

export LAKEHOUSE_CATALOG_COMPACT_AFTER_DELTAS=0
start_lakehouse
python3 - "$rows" >"$work/bench.csv" <<'PY'
import sys
n = int(sys.argv[1])
w = sys.stdout.write
w("id,name,score,city\n")
cities = ["Chicago", "Austin", "Denver", "Boston"]
for i in range(1, n + 1):
    w("%d,name %d,%d,%s\n" % (i, i, i % 1000, cities[i % 4]))
PY
code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "$auth" --data-binary @"$work/bench.csv" \
    "$lh/ingest/file?dataset=bench&format=csv&primary_key=id") || true
[ "$code" = 201 ] || failed "ingest answered $code"

port=${lh##*:}
token=${auth#Authorization: Bearer }
python3 - "$port" "$token" "$rows" "$reps" "$reps_upsert" "$load" <<'PY'
import http.client, json, random, statistics, sys, time
port, token, rows, reps, reps_upsert, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
rnd = random.Random(1)

def call(method, path, body=None):
    data = json.dumps(body) if body is not None else None
    headers = {"Authorization": "Bearer " + token}
    if data:
        headers["Content-Type"] = "application/json"
    t0 = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    out = r.read()
    dt = time.perf_counter() - t0
    if r.status >= 300:
        sys.exit("%s %s -> %d %s" % (method, path, r.status, out[:300]))
    return dt, json.loads(out)

queries = [("point lookup by key", "SELECT * FROM bench WHERE id = %d" % (rows // 2)),
           ("aggregate over all rows", "SELECT city, count(*) AS n, sum(score) AS s FROM bench GROUP BY city ORDER BY city")]

def latency(sql):
    call("POST", "/query", {"sql": sql})  # warm-up
    return statistics.median(call("POST", "/query", {"sql": sql})[0] for _ in range(reps)) * 1000

def commit_batch(n_keys):
    ups = [{"id": rnd.randint(1, rows), "score": rnd.randint(0, 999)} for _ in range(n_keys)]
    ups = list({u["id"]: u for u in ups}.values())
    call("POST", "/datasets/bench/rows", {"upsert": ups, "source": "bench"})

# point upserts/s
t0 = time.perf_counter()
lat = []
for _ in range(reps_upsert):
    dt, _ = call("POST", "/datasets/bench/rows",
                 {"upsert": [{"id": rnd.randint(1, rows), "score": rnd.randint(0, 999)}]})
    lat.append(dt)
elapsed = time.perf_counter() - t0
call("POST", "/datasets/bench/compact")
print("bench/mutations — %d rows; %d reps per query (median); load before: %s" % (rows, reps, load))
print("point upserts: %d requests, %.1f upserts/s, latency p50 %.1f ms, p95 %.1f ms (each: delta + events + manifest, fsync)"
      % (reps_upsert, reps_upsert / elapsed, statistics.median(lat) * 1000,
         sorted(lat)[int(len(lat) * 0.95) - 1] * 1000))

results = {}
done = 0
for target in (0, 10, 100):
    while done < target:
        commit_batch(100)
        done += 1
    results[target] = [latency(sql) for _, sql in queries]
call("POST", "/datasets/bench/compact")
base = [latency(sql) for _, sql in queries]
print("%-28s %12s %12s %12s %12s" % ("query (ms)", "0 deltas", "10 deltas", "100 deltas", "compacted"))
for i, (label, _) in enumerate(queries):
    print("%-28s %12.2f %12.2f %12.2f %12.2f" % (label, results[0][i], results[10][i], results[100][i], base[i]))
print("%-28s %12s %12s %12s" % ("ratio to compacted", "", "", ""))
for i, (label, _) in enumerate(queries):
    print("%-28s %12.2f %12.2f %12.2f" % (label, results[0][i] / base[i], results[10][i] / base[i], results[100][i] / base[i]))
PY
