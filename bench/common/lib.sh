# bench/common/lib.sh — shared by the benchmarks that load the demo data and compare with
# raw DuckDB (bench/ingest, bench/query). Source it after setting: build, here, root,
# scale, threads. It sets up $work (removed on exit), $pids (stopped on exit) and gives:
#   free_port, wait_port PORT, failed MSG, median, sql_str S, json_rows FILE,
#   parquet_list CATALOG_ANSWER_FILE, start_raw (then raw SQL -> "ms rows"),
#   start_lakehouse (then $lh, $auth, $load), start_lakehouse_demo (also $demo_s).

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; failed "port $1 never opened"; }
failed() { # message: print it with the answer body and the logs, then stop
    { echo "$1"; head -c 2000 "$work/body" 2>/dev/null || true; echo
      echo "--- lakehouse log (tail)"; tail -n 20 "$work/server.log" 2>/dev/null || true
      echo "--- demo log (tail)"; tail -n 20 "$work/demo.log" 2>/dev/null || true
      echo "--- duckdb_raw stderr"; tail -n 20 "$work/raw.err" 2>/dev/null || true; } >&2
    exit 1
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sql_str() { printf "'%s'" "${1//\'/\'\'}"; }
json_rows() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["rows"]) if "error" not in d else "error")' "$1"; }
parquet_list() { # catalog answer (file) -> its data files as the body of a DuckDB list: 'a', 'b'
    python3 - "$1" "$work/data/buckets/primary" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("bucket") != "primary": sys.exit("dataset is not in the primary bucket")
# data files only: a manifest also lists the events batch of its version (_journal/events/)
print(", ".join("'%s/%s'" % (sys.argv[2], f["path"].replace("'", "''")) for f in d["files"]
                if f.get("kind") != "events" and not f["path"].startswith("_journal/")))
PY
}

# The raw DuckDB baseline: one long-lived process, statements on its stdin, one answer
# line each ("n ms rows").
start_raw() {
    local duck="$root/third_party/duckdb"
    cc -O2 -o "$work/duckdb_raw" "$here/../common/duckdb_raw.c" -I"$duck/include" \
        -L"$duck/lib" -lduckdb -Wl,-rpath,"$duck/lib"
    mkfifo "$work/raw.in" "$work/raw.out"
    "$work/duckdb_raw" -f /dev/stdin <"$work/raw.in" >"$work/raw.out" 2>"$work/raw.err" & pids+=($!)
    exec {raw_in}>"$work/raw.in" {raw_out}<"$work/raw.out"
}
raw() { # sql -> "ms rows"
    local n ms rows
    printf '%s\n' "$1" >&"$raw_in"
    read -r n ms rows <&"$raw_out" || failed "duckdb_raw failed on: $1"
    echo "$ms $rows"
}

# A lakehouse server on a free port with an empty primary bucket ($extra_toml, when set,
# is appended to its config).
start_lakehouse() {
    mkdir -p "$work/data"
    local lport
    lport=$(free_port)
    cat >"$work/lakehouse.toml" <<TOML
[server]
port = $lport
data_dir = "$work/data"
threads = $threads
[log]
access = false
[storage]
probe_interval_ms = 0
[grpc]
port = ${grpc_port:-0}
${extra_toml:-}
TOML
    "$build/lakehouse" serve --config "$work/lakehouse.toml" >"$work/server.log" 2>&1 & pids+=($!)
    wait_port "$lport"
    if [ -n "${admin_token:-}" ]; then # extra_toml configures the principals, admin_token's too
        auth="Authorization: Bearer $admin_token"
    else
        for _ in $(seq 100); do [ -s "$work/data/admin.token" ] && break; sleep 0.05; done
        [ -s "$work/data/admin.token" ] || failed "lakehouse wrote no $work/data/admin.token"
        auth="Authorization: Bearer $(cat "$work/data/admin.token")"
    fi
    lh="http://127.0.0.1:$lport"
    load=$(cut -d' ' -f1 /proc/loadavg)
}

# A lakehouse server on a free port with the demo data loaded at $scale.
start_lakehouse_demo() {
    start_lakehouse
    local t0=$EPOCHREALTIME
    LAKEHOUSE_TOKEN=${admin_token:-} \
        "$build/lakehouse" demo --scale "$scale" --config "$work/lakehouse.toml" >"$work/demo.log" 2>&1 ||
        failed "lakehouse demo --scale $scale failed"
    demo_s=$(echo "$EPOCHREALTIME - $t0" | bc -l)
}
