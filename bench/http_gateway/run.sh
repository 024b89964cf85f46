#!/usr/bin/env bash
# bench/http_gateway — requests/s and latency of the lakehouse gateway beside a bare
# libmicrohttpd server (same epoll thread pool) in the same run, with wrk on loopback.
#   GET /health  (public: routing, request id, DuckDB ping, JSON rendering)
#   GET /whoami  (bearer auth: SHA-256 + constant-time compare, role check)
# Prints a table and the ratio to the baseline. usage: run.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
secs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
threads=${THREADS:-2}
conns=${CONNS:-32}

command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

cc -O2 -o "$work/baseline_mhd" "$here/baseline_mhd.c" $(pkg-config --cflags --libs libmicrohttpd)
bport=$(free_port)
"$work/baseline_mhd" "$bport" "$threads" & pids+=($!)
wait_port "$bport"

token=bench-token-0123456789
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
lport=$(free_port)
cat >"$work/lakehouse.toml" <<TOML
[server]
port = $lport
data_dir = "$work/data"
threads = $threads
[log]
access = ${ACCESS_LOG:-true}
[[principal]]
name = "bench"
token_sha256 = "$hash"
roles = ["reader"]
TOML
"$build/lakehouse" serve --config "$work/lakehouse.toml" 2>"$work/server.log" & pids+=($!)
wait_port "$lport"

run() { # url [header] -> "rps p50_ms p99_ms"
    local out
    if [ -n "${2:-}" ]; then out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "$2" "$1"); else out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$1"); fi
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers in $1" >&2; exit 1; fi
    echo "$rps $p50 $p99"
}

echo "bench/http_gateway: wrk -t2 -c$conns -d${secs}s, server threads=$threads, access log ${ACCESS_LOG:-true}, $(nproc) cores"
read -r b_rps b_p50 b_p99 < <(run "http://127.0.0.1:$bport/")
read -r h_rps h_p50 h_p99 < <(run "http://127.0.0.1:$lport/health")
read -r w_rps w_p50 w_p99 < <(run "http://127.0.0.1:$lport/whoami" "Authorization: Bearer $token")
printf '%-28s %12s %10s %10s %8s\n' target req/s p50 p99 ratio
printf '%-28s %12s %10s %10s %8s\n' "baseline: bare MHD" "$b_rps" "$b_p50" "$b_p99" 1.00
printf '%-28s %12s %10s %10s %8.2f\n' "lakehouse GET /health" "$h_rps" "$h_p50" "$h_p99" "$(echo "$h_rps / $b_rps" | bc -l)"
printf '%-28s %12s %10s %10s %8.2f\n' "lakehouse GET /whoami" "$w_rps" "$w_p50" "$w_p99" "$(echo "$w_rps / $b_rps" | bc -l)"
