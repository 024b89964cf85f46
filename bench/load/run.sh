#!/usr/bin/env bash
# bench/load — the gateway under load on loopback, beside a bare libmicrohttpd server
# (same epoll thread pool) in the same run. For 1, 8, 64 and 256 concurrent clients
# (wrk connections) it measures:
#   GET  /health                           public; the baseline answers the same route
#   POST /query      a small aggregate     over a 10,000-row dataset
#   POST /vectors/indexes/docs/search      a text query over a 10,000-document index
# and prints req/s, p50, p99 and errors (non-2xx answers, socket errors, timeouts).
# Every request is bounded in count and time (wrk -d); it stops by itself. It exits 1
# when any request failed: under load the server must answer every request.
# usage: run.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
secs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
threads=${THREADS:-4}
clients=${CLIENTS:-"1 8 64 256"}

command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }

root=$(cd "$here/../.." && pwd)
source "$here/../common/lib.sh"

cc -O2 -o "$work/baseline_mhd" "$here/../http_gateway/baseline_mhd.c" $(pkg-config --cflags --libs libmicrohttpd)
bport=$(free_port)
"$work/baseline_mhd" "$bport" "$threads" & pids+=($!)
wait_port "$bport"
# every wrk connection is the same principal: let its queries queue (the per-principal
# bound of 16 waiting would answer 429 at 64 clients: governance, not load) and hold all slots
extra_toml='[engine]
max_queued_per_principal = 0
max_queries_per_principal = 4096'
start_lakehouse # $lh, $auth: an admin token over an empty primary bucket

# 10,000 short documents: a dataset and a text index over it (builtin model).
python3 - "$work/docs.csv" <<'PY'
import csv, random, sys
random.seed(7)
cities = ["Chicago", "Denver", "Austin", "Boston", "Seattle", "Atlanta", "Phoenix", "Miami"]
skills = ["kubernetes", "python", "payroll", "forklift", "nursing", "sql", "welding", "sales",
          "java", "accounting", "logistics", "react", "terraform", "recruiting", "cad"]
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "city", "years", "resume"])
    for i in range(10000):
        s = random.sample(skills, 4)
        w.writerow([i, random.choice(cities), random.randint(0, 30),
                    "%s engineer with %s, %s and %s experience" % tuple(s)])
PY
curl -sf -H "$auth" --data-binary @"$work/docs.csv" \
    "$lh/ingest/file?dataset=docs&format=csv&mode=create" >"$work/body" || failed "ingest failed"
curl -s -H "$auth" -H "Content-Type: application/json" "$lh/vectors/indexes" \
    -d '{"name":"docs","dataset":"docs","id_column":"id","text_column":"resume"}' >"$work/index.json"; grep -q job_id "$work/index.json" ||
    failed "index create failed: $(cat "$work/index.json")"
for _ in $(seq 600); do
    state=$(curl -s -H "$auth" "$lh/vectors/indexes/docs" | python3 -c "import json,sys; print(json.load(sys.stdin).get(\"state\", \"\"))" 2>/dev/null || true)
    [ "$state" = ready ] && break
    sleep 0.2
done

cat >"$work/query.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"sql": "SELECT city, count(*) AS n, avg(years) AS y FROM docs GROUP BY city ORDER BY city"}'
LUA
cat >"$work/search.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query": "python engineer with kubernetes experience", "k": 10}'
LUA
# one request of each, to see that they answer before loading them
curl -sf -H "$auth" -H "Content-Type: application/json" "$lh/query" -d '{"sql": "SELECT count(*) FROM docs"}' >"$work/body" || failed "query failed"
curl -sf -H "$auth" -H "Content-Type: application/json" "$lh/vectors/indexes/docs/search" -d '{"query": "python", "k": 3}' >"$work/body" ||
    failed "search failed"

failures=0
run() { # label clients url [wrk args...] -> one table line
    local label=$1 c=$2 url=$3; shift 3
    local t=$(( c < 2 ? 1 : 2 ))
    local out
    out=$(wrk -t"$t" -c"$c" -d"${secs}s" --timeout 10s --latency "$@" "$url")
    local rps p50 p99 non2xx sock
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
    sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out"); sock=${sock:-0}
    local errors=$(( non2xx + sock ))
    [ "$errors" -eq 0 ] || failures=$((failures + errors))
    printf '%-22s %8s %12s %10s %10s %8s\n' "$label" "$c" "$rps" "$p50" "$p99" "$errors"
}

echo "bench/load: wrk ${secs}s per cell, server threads=$threads, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-22s %8s %12s %10s %10s %8s\n' target clients req/s p50 p99 errors
for c in $clients; do
    run "baseline: bare MHD" "$c" "http://127.0.0.1:$bport/"
    run "GET /health" "$c" "$lh/health"
    run "POST /query" "$c" "$lh/query" -H "$auth" -s "$work/query.lua"
    run "POST search" "$c" "$lh/vectors/indexes/docs/search" -H "$auth" -s "$work/search.lua"
done
if [ "$failures" -ne 0 ]; then
    failed "bench/load: $failures requests failed"
fi
