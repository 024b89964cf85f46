#!/usr/bin/env bash
# bench/mcp — a named tool called through MCP (POST /mcp tools/call on one session) beside
# the same call through POST /tools/{name}/call, over one keep-alive connection, in the
# same run, alternating (client.py). Both run the same registry function (lh_tools_call:
# validation, permissions, rate limit, the query, the durable audit record); the ratio is
# the MCP door's own cost (JSON-RPC parsing, session lookup, result rendering). Target
# <= 1.1x. Medians of REPS. Never fails on speed.
# usage: run.sh BUILD_DIR     env: REPS (default 200)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
reps=${REPS:-200}
threads=4
. "$here/../common/lib.sh"

start_lakehouse
{
    echo "id,name,city,years"
    for i in $(seq 1 5000); do echo "$i,person$i,city$((i % 50)),$((i % 30))"; done
} >"$work/people.csv"
code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "$auth" --data-binary @"$work/people.csv" \
    "$lh/ingest/file?dataset=people&format=csv&mode=create") || true
[ "$code" = 201 ] || failed "creating the dataset answered $code"
cat >"$work/tool.json" <<'JSON'
{"name": "people_in_city", "description": "People of a city with at least some years",
 "input_schema": {"type": "object", "additionalProperties": false,
                  "required": ["city", "min_years"],
                  "properties": {"city": {"type": "string", "maxLength": 40},
                                 "min_years": {"type": "integer", "minimum": 0}}},
 "kind": "sql",
 "binding": {"datasets": ["people"], "max_rows": 1000,
             "query": "SELECT id, name FROM people WHERE city = $city AND years >= $min_years ORDER BY id"},
 "allow": {"roles": ["admin"]}, "rate": {"per_minute": 1000000, "burst": 100000}}
JSON
code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "$auth" -H 'Content-Type: application/json' \
    --data-binary @"$work/tool.json" "$lh/tools") || true
[ "$code" = 201 ] || failed "creating the tool answered $code: $(cat "$work/body")"

token=${auth#Authorization: Bearer }
python3 "$here/client.py" 127.0.0.1 "${lh##*:}" "$token" people_in_city \
    '{"city": "city7", "min_years": 10}' "$reps" >"$work/times" ||
    failed "the client failed"
median() { grep "^$1 " "$work/times" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
h=$(median http)
m=$(median mcp)
echo "bench/mcp: $reps calls each, one keep-alive connection, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-34s %10s\n' "door" "p50"
awk -v h="$h" -v m="$m" 'BEGIN {
    printf "%-34s %8.3fms\n", "POST /tools/people_in_city/call", h * 1000
    printf "%-34s %8.3fms\n", "POST /mcp tools/call", m * 1000
    printf "ratio mcp/http: %.3fx (target <= 1.1x)\n", m / h }'
