#!/usr/bin/env bash
# bench/grpc — vector search (the agents' hot path) and a small query (ten rows) through the
# gRPC door beside the same through HTTP keep-alive, in the same run, at 1, 8 and 64
# concurrent clients
# (client.py: one process per client, Python clients for both doors: python3-grpcio and
# http.client, so the client's own cost is alike). Reports p50/p99 of the round trip and
# calls/s, and the ratios gRPC/HTTP. Both doors call the same module functions
# (lh_search_index, lh_search_run). Never fails on speed.
# usage: run.sh BUILD_DIR     env: CALLS (per concurrency level, default 2000), SCALE (0.02)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scale=${SCALE:-0.02}
threads=4
. "$here/../common/lib.sh"
grpc_port=$(free_port)
# 64 clients share one principal here: let all of them wait for a query slot (its line is
# 16 long by default, and the 17th would be answered 429), and hold a stream each (32 by
# default)
extra_toml="[engine]
max_queued_per_principal = 0"
export LAKEHOUSE_GRPC_MAX_STREAMS_PER_PRINCIPAL=256
start_lakehouse_demo
wait_port "$grpc_port"
mkdir -p "$work/stubs"
(cd "$work/stubs" && /usr/bin/python3 -m grpc_tools.protoc -I"$root/proto" -I/usr/include \
    --python_out=. --grpc_python_out=. "$root"/proto/lakehouse/v1/*.proto) ||
    failed "compiling the stubs failed"
token=${auth#Authorization: Bearer }
/usr/bin/python3 "$here/client.py" 127.0.0.1 "${lh##*:}" "$grpc_port" "$token" "$work/stubs" \
    candidate_resumes "Senior DevOps engineer in Chicago" "${CALLS:-2000}" "${pids[0]}" \
    "SELECT candidate_id, full_name, city FROM candidates ORDER BY candidate_id LIMIT 10" >"$work/times" ||
    failed "the client failed"
echo "bench/grpc: vector search (k 10, text query) and a 10-row query, scale $scale demo, $(nproc) cores, load $load"
printf '%-7s %-6s %-8s %10s %10s %10s %16s\n' call door clients "p50 ms" "p99 ms" "calls/s" "server cpu/call"
awk '{ printf "%-7s %-6s %-8s %10.3f %10.3f %10.1f %14.1fus\n", $1, $2, $3, $4, $5, $6, $7
       k = $1 " " $3
       if ($2 == "http") { h50[k] = $4; hr[k] = $6; hc[k] = $7 } else { g50[k] = $4; gr[k] = $6; gc[k] = $7 } }
     END { for (k in h50) printf "%-10s clients gRPC/HTTP: p50 %.2fx, calls/s %.2fx, server cpu/call %.2fx\n", k, g50[k] / h50[k], gr[k] / hr[k], (hc[k] > 0 ? gc[k] / hc[k] : 0) }' \
    "$work/times"
