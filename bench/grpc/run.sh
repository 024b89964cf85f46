#!/usr/bin/env bash
# bench/grpc — vector search (the agents' hot path) through the gRPC door beside the same
# search through HTTP keep-alive, in the same run, at 1, 8 and 64 concurrent clients
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
extra_toml=""
start_lakehouse_demo
wait_port "$grpc_port"
mkdir -p "$work/stubs/lhproto"
cp -r "$root/proto/." "$work/stubs/lhproto/"
(cd "$work/stubs" && /usr/bin/python3 -m grpc_tools.protoc -I. -I/usr/include --python_out=. \
    --grpc_python_out=. lhproto/lakehouse/v1/vectors.proto) || failed "compiling the stubs failed"
token=${auth#Authorization: Bearer }
/usr/bin/python3 "$here/client.py" 127.0.0.1 "${lh##*:}" "$grpc_port" "$token" "$work/stubs" \
    candidate_resumes "Senior DevOps engineer in Chicago" "${CALLS:-2000}" "${pids[0]}" >"$work/times" ||
    failed "the client failed"
echo "bench/grpc: vector search (k 10, text query, scale $scale demo), $(nproc) cores, load $load"
printf '%-8s %-8s %10s %10s %10s %16s\n' door clients "p50 ms" "p99 ms" "calls/s" "server cpu/call"
awk '{ printf "%-8s %-8s %10.3f %10.3f %10.1f %14.1fus\n", $1, $2, $3, $4, $5, $6
       if ($1 == "http") { h50[$2] = $3; hr[$2] = $5; hc[$2] = $6 } else { g50[$2] = $3; gr[$2] = $5; gc[$2] = $6 } }
     END { for (c in h50) printf "clients %-3s gRPC/HTTP: p50 %.2fx, calls/s %.2fx, server cpu/call %.2fx\n", c, g50[c] / h50[c], gr[c] / hr[c], gc[c] / hc[c] }' \
    "$work/times"
