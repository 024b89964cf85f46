#!/usr/bin/env bash
# bench/vector/api.sh — a vector index over the demo candidates' resumes (builtin model)
# through the HTTP API: build time, then search latency and recall@10 for plain, broadly
# filtered and narrowly filtered searches, each beside exact (brute-force) search over the
# same index in the same run — the baseline every graph search is measured against.
# Never fails on speed.
# usage: api.sh BUILD_DIR     env: SCALE (demo scale, default 1: 100,000 candidates),
#        QUERIES (200), THREADS (server threads, 4), EF (search beam, index default)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scale=${SCALE:-1}
threads=${THREADS:-4}
. "$here/../common/lib.sh"
start_lakehouse_demo
echo "bench/vector/api: demo at scale $scale loaded in $(printf %.1f "$demo_s") s (load before: $load)"
cc -O2 -o "$work/http_probe" "$here/http_probe.c"
PYTHONPATH="$here/../common" python3 - "$lh" "$(cat "$work/data/admin.token")" "${QUERIES:-200}" "${EF:-0}" \
    "$work/http_probe" "$work/probe_vectors" <<'PY'
import json, random, statistics, subprocess, sys, threading, time
import lhapi
url, token, n_queries, ef = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
probe, probe_vectors = sys.argv[5], sys.argv[6]
api = lhapi.Api(url, token)
call = api.call
t0 = time.perf_counter()
j = api.wait(call("POST", "/vectors/indexes", {"name": "resumes", "dataset": "candidates",
                  "id_column": "candidate_id", "text_column": "resume_text"}))
build_s = time.perf_counter() - t0
d = call("GET", "/vectors/indexes/resumes")
print("index: %d resumes -> %d vectors of %d dims, built in %.1f s (embed + graph + files), "
      "%.0f MB in memory" % (d["documents"], d["vectors"], d["dim"], build_s,
                              d["memory_bytes"] / 1e6))
rows = call("POST", "/query", {"sql": "SELECT resume_text, city FROM candidates USING SAMPLE %d ROWS "
                               "(reservoir, 7)" % n_queries})["rows"]
random.seed(7)
queries = [" ".join(r["resume_text"].split()[1:6]) for r in rows]  # a fragment of a resume
cities = [r["city"] for r in rows]
# filters as agents repeat them (search_candidates with a city: the filter cache answers
# after the first), and cold ones that no search asked before (a miss every time)
kinds = [("plain", lambda i: None),
         ("filter city (~10%)", lambda i: "city = '%s'" % cities[i].replace("'", "''")),
         ("  cold (new each time)", lambda i: "city = '%s' AND candidate_id <> %d"
          % (cities[i].replace("'", "''"), -1 - i)),
         ("filter id < 1000 (~1%)", lambda i: "candidate_id < 1000"),
         ("  cold (new each time)", lambda i: "candidate_id < %d" % (1000 + i))]
print("%-24s %10s %10s %10s %10s %9s %8s %10s %7s" % ("search", "http p50", "index p50",
      "exact p50", "ratio", "recall@10", "method", "http/index", "cached"))
for name, flt in kinds:
    http_ms, took, exact_took, recall, methods, cached = [], [], [], [], set(), 0
    for i, q in enumerate(queries):
        body = {"query": q, "k": 10}
        if ef:
            body["ef"] = ef
        if flt(i):
            body["filter"] = flt(i)
        t = time.perf_counter()
        a = call("POST", "/vectors/indexes/resumes/search", body)
        http_ms.append((time.perf_counter() - t) * 1000)
        took.append(a["took_us"])
        methods.add(a["method"])
        cached += 1 if a.get("filter", {}).get("cached") else 0
        body["exact"] = True
        e = call("POST", "/vectors/indexes/resumes/search", body)
        exact_took.append(e["took_us"])
        truth = {(h["doc_id"], h["chunk_id"]) for h in e["hits"]}
        got = {(h["doc_id"], h["chunk_id"]) for h in a["hits"]}
        recall.append(len(truth & got) / max(1, len(truth)))
    p50, e50 = statistics.median(took), statistics.median(exact_took)
    h50 = statistics.median(http_ms)
    print("%-24s %8.2fms %8.0fus %8.0fus %9.3fx %9.4f %8s %9.2fx %6.0f%%" % (name, h50, p50,
          e50, p50 / e50 if e50 else 0, statistics.mean(recall), "/".join(sorted(methods)),
          h50 * 1000 / p50 if p50 else 0, 100.0 * cached / len(queries)))
print("(ratio: index p50 / exact p50 over the same vectors; index and exact exclude HTTP, query "
      "embedding and the filter's SQL; http/index: the search's HTTP p50 over its index p50; "
      "cached: searches whose filter the filter cache answered)")

# the HTTP path itself: a search by vector (no embedding) as JSON numbers and as a raw
# float32 body, each minus its index time, beside the /health round trip on the same
# keep-alive connection
import struct
dim = call("GET", "/vectors/indexes/resumes")["dim"]
random.seed(11)
vecs = [[random.gauss(0, 1) for _ in range(dim)] for _ in range(len(queries))]
c = api.connect()
def timed(method, path, body, headers):
    t = time.perf_counter()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    return (time.perf_counter() - t) * 1e6, data
raw_headers = dict(api.headers)
raw_headers["Content-Type"] = "application/octet-stream"
# each body kind in its own loop, every search right after a /health on the same
# connection: a search that followed the Python client's own work on another kind of
# request (building a long JSON body, parsing an answer) measured 30-60 us slower
import gc
gc.disable()  # as timeit does: the collector's pauses are the client's, not the server's
over = {}
try:
    for kind in ("json", "raw"):
        for rep in range(2):  # the first pass warms up
            health, search = [], []
            for v in vecs:
                health.append(timed("GET", "/health", None, api.headers)[0])
                if kind == "json":
                    us, data = timed("POST", "/vectors/indexes/resumes/search",
                                     json.dumps({"vector": v, "k": 10}), api.headers)
                else:
                    us, data = timed("POST", "/vectors/indexes/resumes/search?k=10",
                                     struct.pack("<%df" % dim, *v), raw_headers)
                search.append(us - json.loads(data)["took_us"])
        over[kind] = (statistics.median(search), statistics.median(health))
finally:
    gc.enable()
print("HTTP path, k=10 by vector, p50 of end to end minus took_us, Python client: JSON body "
      "%.0f us (GET /health %.0f us) -> %.0f us over it; raw float32 body %.0f us (/health %.0f "
      "us) -> %.0f us over it" % (over["json"][0], over["json"][1], over["json"][0] - over["json"][1],
                                  over["raw"][0], over["raw"][1], over["raw"][0] - over["raw"][1]))
# the same requests from a C client (bench/vector/http_probe.c) that adds nothing between
# them: Python's own work between requests (building and parsing JSON, its collector)
# changes how warm the machine is for the next one, and shows in every figure above
with open(probe_vectors, "wb") as f:
    f.write(b"%d\n" % dim)
    for v in vecs:
        f.write(struct.pack("<%df" % dim, *v))
port = url.rsplit(":", 1)[1]
from urllib.parse import quote
city_filter = "city = '%s'" % cities[0].replace("'", "''")
out = subprocess.run([probe, port, token, "resumes", probe_vectors, "5", quote(city_filter),
                      quote("candidate_id < 1000")], check=True, capture_output=True,
                     text=True).stdout.split("\n")
p = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in out if line}
print("HTTP path, same, C client (p50/p99): JSON body %.0f/%.0f us, raw float32 body %.0f/%.0f "
      "us; GET /health round trip %.0f/%.0f us -> overhead %.0f / %.0f us over it (p50)"
      % (p["json"][0], p["json"][1], p["raw"][0], p["raw"][1], p["health"][0], p["health"][1],
         p["json"][0] - p["health"][0], p["raw"][0] - p["health"][0]))
for name, label in (("filter1", city_filter + " (~10%)"), ("filter2", "candidate_id < 1000 (~1%)")):
    print("filtered search by vector, C client, repeated filter %s: http p50 %.0f us, index p50 "
          "%.0f us, http/index %.2fx" % (label, p[name][0], p[name][1],
                                         p[name][0] / p[name][1] if p[name][1] else 0))

# searches through a promotion: a loop on its own connection while a new generation
# (ef_construction 40) is built and swapped in
stop, lat, errors = threading.Event(), [], []
def loop():
    c = api.connect()
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        c.request("POST", "/vectors/indexes/resumes/search", body=json.dumps(
            {"query": queries[i % len(queries)], "k": 10}), headers=api.headers)
        r = c.getresponse()
        r.read()
        lat.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            errors.append(r.status)
        i += 1
th = threading.Thread(target=loop)
th.start()
time.sleep(1)
t0 = time.perf_counter()
api.wait(call("POST", "/vectors/indexes/resumes/promote", {"hnsw": {"ef_construction": 40}}))
promote_s = time.perf_counter() - t0
time.sleep(1)
stop.set()
th.join()
lat.sort()
print("through a promote (%.1f s): %d searches, %d errors, p50 %.2f ms, p99 %.2f ms, worst %.1f ms"
      % (promote_s, len(lat), len(errors), lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]))
PY
