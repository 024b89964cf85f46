#!/usr/bin/env bash
# bench/tools — the cost of a named tool. A `sql` tool call (POST /tools/{name}/call:
# lookup, permission and bucket checks, rate limits, argument validation, the bound
# query, and the audit record made durable — an fdatasync shared by concurrent calls —
# before the answer) beside the same SQL through POST /query, both over keep-alive HTTP
# (wrk) against one server in the same run:
#   1. overhead: one client, ROUNDS alternating rounds of each; the medians of their
#      latencies and req/s, and the ratio tool/query (target <= 1.1x);
#   2. calls/s with 1, 8 and 64 concurrent agents, /query beside them.
# All wrk connections of a target share one token, so the agent principal's own ceiling
# ([tools] max_calls_per_minute) and the tool's rate are raised to their maxima (10M a
# minute, burst 1M) and the engine's per-principal slots opened: a 429 here would be
# governance, not load. Any non-2xx answer is counted and makes the run exit 1. Figures,
# not pass/fail on speed.
# usage: run.sh BUILD_DIR [SECONDS] [ROUNDS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
secs=${2:-5}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
threads=${THREADS:-4}
clients=${CLIENTS:-"1 8 64"}

command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }
source "$here/../common/lib.sh"

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
admin_tok=bench-admin-$RANDOM$RANDOM reader_tok=bench-reader-$RANDOM$RANDOM
agent_tok=bench-agent-$RANDOM$RANDOM
mkdir -p "$work/data"
port=$(free_port)
cat >"$work/lakehouse.toml" <<TOML
[server]
port = $port
data_dir = "$work/data"
threads = $threads
[log]
access = false
[storage]
probe_interval_ms = 0
[engine]
max_queued_per_principal = 0
max_queries_per_principal = 4096
[tools]
max_calls_per_minute = 10000000

[[principal]]
name = "owner"
token_sha256 = "$(sha "$admin_tok")"
roles = ["admin"]

[[principal]]
name = "analyst"
token_sha256 = "$(sha "$reader_tok")"
roles = ["reader"]

[[principal]]
name = "agent"
token_sha256 = "$(sha "$agent_tok")"
roles = ["agent"]
TOML
"$build/lakehouse" serve --config "$work/lakehouse.toml" >"$work/server.log" 2>&1 & pids+=($!)
wait_port "$port"
lh="http://127.0.0.1:$port"
admin="Authorization: Bearer $admin_tok"

# 10,000 rows: a dataset the tool and the query read.
python3 - "$work/docs.csv" <<'PY'
import csv, random, sys
random.seed(7)
cities = ["Chicago", "Denver", "Austin", "Boston", "Seattle", "Atlanta", "Phoenix", "Miami"]
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "city", "years"])
    for i in range(10000):
        w.writerow([i, random.choice(cities), random.randint(0, 30)])
PY
curl -sf -H "$admin" --data-binary @"$work/docs.csv" \
    "$lh/ingest/file?dataset=docs&format=csv&mode=create" >"$work/body" || failed "ingest failed"
sql_tool='SELECT count(*) AS n, avg(years) AS y FROM docs WHERE city = $city'
sql_query="SELECT count(*) AS n, avg(years) AS y FROM docs WHERE city = 'Chicago'"
python3 - "$sql_tool" >"$work/tool.json" <<'PY'
import json, sys
print(json.dumps({
    "name": "city_stats", "description": "Head count and mean experience in a city",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["city"],
                     "properties": {"city": {"type": "string", "maxLength": 40}}},
    "kind": "sql", "binding": {"datasets": ["docs"], "max_rows": 10, "query": sys.argv[1]},
    "allow": {"roles": ["agent"]}, "rate": {"per_minute": 10000000, "burst": 1000000}}))
PY
curl -sf -H "$admin" -H "Content-Type: application/json" "$lh/tools" -d @"$work/tool.json" \
    >"$work/body" || failed "tool definition failed"

cat >"$work/call.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"arguments": {"city": "Chicago"}}'
LUA
cat >"$work/query.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"sql": "$sql_query"}]]
LUA
# one of each, and the same answer from both
curl -sf -H "Authorization: Bearer $agent_tok" -H "Content-Type: application/json" \
    "$lh/tools/city_stats/call" -d '{"arguments": {"city": "Chicago"}}' >"$work/call.json" ||
    failed "tool call failed: $(cat "$work/call.json")"
curl -sf -H "Authorization: Bearer $reader_tok" -H "Content-Type: application/json" "$lh/query" \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1]}))' "$sql_query")" \
    >"$work/query.json" || failed "query failed"
python3 - "$work/call.json" "$work/query.json" <<'PY' || failed "the tool and /query disagree"
import json, sys
call, query = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert call["result"]["rows"] == query["rows"], (call, query)
PY

failures=0
last_rps=0 last_p50=0
run() { # label clients url token script -> one table line; sets last_rps, last_p50 (ms)
    local label=$1 c=$2 url=$3 tok=$4 script=$5
    local t=$(( c < 2 ? 1 : 2 )) out
    out=$(wrk -t"$t" -c"$c" -d"${secs}s" --timeout 10s --latency -H "Authorization: Bearer $tok" \
        -s "$script" "$url")
    local rps p50 p99 non2xx sock errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
    sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out"); sock=${sock:-0}
    errors=$(( non2xx + sock ))
    failures=$(( failures + errors ))
    last_rps=$rps
    last_p50=$(python3 -c 'import sys; v=sys.argv[1]
for u, f in (("us", 1e-3), ("ms", 1), ("s", 1e3)):
    if v.endswith(u) and not (u == "s" and v.endswith(("ms", "us"))):
        print(float(v[:-len(u)]) * f); break' "$p50")
    printf '%-24s %8s %12s %10s %10s %8s\n' "$label" "$c" "$rps" "$p50" "$p99" "$errors"
}

echo "bench/tools: wrk ${secs}s per cell, server threads=$threads, $(nproc) cores," \
     "load $(cut -d' ' -f1 /proc/loadavg)"
echo "one agent principal (its ceiling and the tool's rate raised to the maxima: no 429)"
printf '%-24s %8s %12s %10s %10s %8s\n' target clients req/s p50 p99 errors
q_rps=() t_rps=() q_p50=() t_p50=()
for r in $(seq "$rounds"); do
    run "POST /query (round $r)" 1 "$lh/query" "$reader_tok" "$work/query.lua"
    q_rps+=("$last_rps"); q_p50+=("$last_p50")
    run "tool call (round $r)" 1 "$lh/tools/city_stats/call" "$agent_tok" "$work/call.lua"
    t_rps+=("$last_rps"); t_p50+=("$last_p50")
done
mq=$(printf '%s\n' "${q_rps[@]}" | median) mt=$(printf '%s\n' "${t_rps[@]}" | median)
pq=$(printf '%s\n' "${q_p50[@]}" | median) pt=$(printf '%s\n' "${t_p50[@]}" | median)
printf 'overhead, 1 client: /query %s req/s (p50 %s ms), tool %s calls/s (p50 %s ms):' \
    "$mq" "$pq" "$mt" "$pt"
printf ' time per call %.2fx /query (target <= 1.1x), p50 %.2fx\n' \
    "$(echo "$mq / $mt" | bc -l)" "$(echo "$pt / $pq" | bc -l)"
for c in $clients; do
    run "POST /query" "$c" "$lh/query" "$reader_tok" "$work/query.lua"
    qr=$last_rps
    run "tool call" "$c" "$lh/tools/city_stats/call" "$agent_tok" "$work/call.lua"
    printf '  %s agents: %s calls/s, %.2fx the /query rate\n' "$c" "$last_rps" \
        "$(echo "$last_rps / $qr" | bc -l)"
done
audited=$(curl -sf -H "$admin" "$lh/audit?tool=city_stats&limit=1" | python3 -c \
    'import json,sys; print(len(json.load(sys.stdin)["records"]))')
[ "$audited" = 1 ] || failed "no audit records of the calls"
if [ "$failures" -ne 0 ]; then
    failed "bench/tools: $failures requests failed"
fi
