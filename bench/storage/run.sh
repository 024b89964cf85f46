#!/usr/bin/env bash
# bench/storage — object PUT/GET throughput through the lakehouse object API, beside
# a baseline doing the same work directly, in the same run, on loopback:
#   fs bucket  vs  cp of the same file into a folder (PUT), cat file > /dev/null (GET)
#   s3 bucket  vs  curl straight to the same s3rver (PUT/GET; s3rver checks no signature)
# Objects of 1 MiB and 64 MiB; every request is one curl, timed by curl's %{time_total};
# each PUT writes a new key, each GET reads one of them back (status and size checked).
# Prints MB/s (10^6 bytes/s) from the median of the repetitions and the ratio
# lakehouse/baseline. Never fails on speed (it does stop on a failed request).
# usage: run.sh BUILD_DIR     env: REPS_1M (default 20), REPS_64M (default 3)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
reps_1m=${REPS_1M:-20}
reps_64m=${REPS_64M:-3}
threads=4

s3rver="$root/tests/.node/node_modules/.bin/s3rver"
if [ ! -x "$s3rver" ]; then
    echo "installing s3rver 3.7.1 under tests/.node" >&2
    mkdir -p "$root/tests/.node"
    npm install --silent --no-audit --no-fund --prefix "$root/tests/.node" s3rver@3.7.1 >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; failed "port $1 never opened"; }
failed() { # message: print it with the answer body and the server logs, then stop
    { echo "$1"; head -c 2000 "$work/body" 2>/dev/null || true; echo
      echo "--- lakehouse log (tail)"; tail -n 20 "$work/server.log" 2>/dev/null || true
      echo "--- s3rver log (tail)"; tail -n 20 "$work/s3rver.log" 2>/dev/null || true; } >&2
    exit 1
}

mkdir -p "$work/s3rver" "$work/data" "$work/fsb" "$work/cp_dst" "$work/src"

# ---- s3rver ---------------------------------------------------------------------------
sport=$(free_port)
NODE_OPTIONS=--openssl-legacy-provider "$s3rver" -d "$work/s3rver" -p "$sport" -a 127.0.0.1 \
    --configure-bucket benchb --silent >"$work/s3rver.log" 2>&1 & pids+=($!)
wait_port "$sport"

# ---- lakehouse ------------------------------------------------------------------------
(umask 077; printf '[s3_local]\naccess_key_id = "S3RVER"\nsecret_access_key = "S3RVER"\n' >"$work/secrets.toml")
chmod 600 "$work/secrets.toml"
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
[secrets]
file = "$work/secrets.toml"
[[bucket]]
name = "fsb"
backend = "fs"
root = "$work/fsb"
[[bucket]]
name = "s3b"
backend = "s3"
endpoint = "http://127.0.0.1:$sport"
region = "us-east-1"
bucket = "benchb"
path_style = true
secret_ref = "s3_local"
TOML
"$build/lakehouse" serve --config "$work/lakehouse.toml" >"$work/server.log" 2>&1 & pids+=($!)
wait_port "$lport"
for _ in $(seq 100); do [ -s "$work/data/admin.token" ] && break; sleep 0.05; done
[ -s "$work/data/admin.token" ] || failed "lakehouse wrote no $work/data/admin.token"
auth="Authorization: Bearer $(cat "$work/data/admin.token")"
lh="http://127.0.0.1:$lport/storage/buckets"
s3="http://127.0.0.1:$sport/benchb"

# ---- measuring ------------------------------------------------------------------------
# Each function runs one request and prints its seconds; it exits on any failure.
curl_put() { # url file [header]
    local out
    out=$(curl -sS -o "$work/body" -w '%{http_code} %{time_total}' ${3:+-H "$3"} \
        -H 'Content-Type: application/octet-stream' -X PUT --data-binary @"$2" "$1") || true
    case $out in 2??\ *) echo "${out#* }" ;; *) failed "PUT $1 answered ${out%% *}" ;; esac
}
curl_get() { # url bytes [header]
    local out code size t
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' ${3:+-H "$3"} "$1") || true
    read -r code size t <<<"$out"
    if [ "$code" != 200 ]; then # fetch again to show the error body
        curl -sS -o "$work/body" ${3:+-H "$3"} "$1" || true
        failed "GET $1 answered $code"
    fi
    [ "$size" = "$2" ] || failed "GET $1 sent $size bytes, expected $2"
    echo "$t"
}
# cp and cat are timed from bash ($EPOCHREALTIME), which includes starting the process
# (fork+exec costs milliseconds in some sandboxes, more than cat of 1 MiB). So each
# timing covers one process over a batch of K files (>= 256 MiB in all, >= the reps),
# the median start cost of /bin/true is taken off, and the rest is divided by K.
timed() { local t0=$EPOCHREALTIME; "$@"; local t1=$EPOCHREALTIME; echo "$t1 - $t0" | bc -l; }
start_cost() { local i; for ((i = 0; i < 9; i++)); do timed /bin/true; done | median; }
cp_sync() { cp "$@" "$work/cp_dst/" && sync "$work/cp_dst/"*; }  # sync FILE... fsyncs each
cat_null() { cat "$@" >/dev/null; }
cp_batch() { rm -f "$work/cp_dst/"*; sync; timed cp "${batch[@]}" "$work/cp_dst/"; }
cp_sync_batch() { rm -f "$work/cp_dst/"*; sync; timed cp_sync "${batch[@]}"; }
cat_batch() { timed cat_null "$work/cp_dst/"*; }
per_file() { # batch_seconds processes -> seconds per file, net of the process starts
    local t; t=$(echo "($1 - $2 * $start) / ${#batch[@]}" | bc -l)
    if [ "$(echo "$t <= 0" | bc)" = 1 ]; then t=$(echo "$1 / ${#batch[@]}" | bc -l); fi
    echo "$t"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A secs # "<size> <op> <target>" -> median seconds
measure() { # label_key reps cmd... (cmd gets the repetition number appended)
    local key=$1 reps=$2; shift 2
    local i times=()
    for ((i = 0; i < reps; i++)); do times+=("$("$@" "$i")"); done
    secs[$key]=$(printf '%s\n' "${times[@]}" | median)
}

# argument adapters: the repetition number picks the key, so each PUT writes a new object
# and each GET reads one of those back.
lh_put() { curl_put "$lh/$1/objects/bench/$2/$4" "$3" "$auth"; }  # bucket size file i
lh_get() { curl_get "$lh/$1/objects/bench/$2/$4" "$3" "$auth"; }  # bucket size bytes i
s3_put() { curl_put "$s3/direct/$1/$3" "$2"; }                      # size file i
s3_get() { curl_get "$s3/direct/$1/$3" "$2"; }                      # size bytes i

sizes=(1M 64M)
declare -A bytes=([1M]=$((1 << 20)) [64M]=$((64 << 20)))
declare -A reps=([1M]=$reps_1m [64M]=$reps_64m)
declare -A start_ms kfiles
for s in "${sizes[@]}"; do
    head -c "${bytes[$s]}" /dev/urandom >"$work/src/$s.bin"
    f="$work/src/$s.bin" n=${reps[$s]} b=${bytes[$s]}
    # one untimed round trip of each path first (connections, caches, lazy init)
    lh_put fsb "$s" "$f" warm >/dev/null; lh_get fsb "$s" "$b" warm >/dev/null
    lh_put s3b "$s" "$f" warm >/dev/null; lh_get s3b "$s" "$b" warm >/dev/null
    s3_put "$s" "$f" warm >/dev/null; s3_get "$s" "$b" warm >/dev/null
    # fs baseline: K hard links of the source file, copied by one cp, read by one cat
    k=$(( (256 << 20) / b )); [ "$k" -ge "$n" ] || k=$n
    rm -rf "$work/batch"; mkdir -p "$work/batch"; batch=()
    for ((i = 0; i < k; i++)); do ln "$f" "$work/batch/$s.$i"; batch+=("$work/batch/$s.$i"); done
    start=$(start_cost); start_ms[$s]=$(echo "$start * 1000" | bc -l)
    cp_batch >/dev/null; cat_batch >/dev/null # untimed warm-up
    times=(); for i in 1 2 3; do times+=("$(per_file "$(cp_sync_batch)" 2)"); done
    secs["$s PUT cpsync"]=$(printf '%s\n' "${times[@]}" | median)
    times=(); for i in 1 2 3; do times+=("$(per_file "$(cp_batch)" 1)"); done
    secs["$s PUT cp"]=$(printf '%s\n' "${times[@]}" | median)
    times=(); for i in 1 2 3; do times+=("$(per_file "$(cat_batch)" 1)"); done
    secs["$s GET cat"]=$(printf '%s\n' "${times[@]}" | median)
    kfiles[$s]=$k
    rm -f "$work/cp_dst/"*; sync # leave no writeback behind for the rows below
    measure "$s PUT fsb" "$n" lh_put fsb "$s" "$f"
    measure "$s PUT s3direct" "$n" s3_put "$s" "$f"
    measure "$s PUT s3b" "$n" lh_put s3b "$s" "$f"
    measure "$s GET fsb" "$n" lh_get fsb "$s" "$b"
    measure "$s GET s3direct" "$n" s3_get "$s" "$b"
    measure "$s GET s3b" "$n" lh_get s3b "$s" "$b"
done

# ---- table ----------------------------------------------------------------------------
mbps() { echo "$1 / 1000000 / $2" | bc -l; }
echo "bench/storage: MB/s (10^6 B/s) from the MEDIAN of ${reps_1m} reps (1 MiB) / ${reps_64m} reps (64 MiB), one curl per request, server threads=$threads, $(nproc) cores"
printf '%-6s %-4s %-46s %10s %11s %7s\n' size op target MB/s median_ms ratio
row() { # size op key label [baseline_key]
    local t=${secs["$1 $2 $3"]} r=1.00
    local m; m=$(mbps "${bytes[$1]}" "$t")
    if [ -n "${5:-}" ]; then r=$(printf '%.2f' "$(echo "$m / $(mbps "${bytes[$1]}" "${secs["$1 $2 $5"]}")" | bc -l)"); fi
    printf '%-6s %-4s %-46s %10.1f %11.2f %7s\n' "${1}iB" "$2" "$4" "$m" "$(echo "$t * 1000" | bc -l)" "$r"
}
for s in "${sizes[@]}"; do
    row "$s" PUT cp       "baseline fs: cp file into a folder (x${kfiles[$s]})"
    row "$s" PUT cpsync   "baseline fs: cp, then sync (fsync) each (x${kfiles[$s]})"
    row "$s" PUT fsb      "lakehouse fs bucket, ratio to cp" cp
    row "$s" PUT fsb      "lakehouse fs bucket, ratio to cp + sync" cpsync
    row "$s" PUT s3direct "baseline s3: curl PUT straight to s3rver"
    row "$s" PUT s3b      "lakehouse s3 bucket (-> s3rver)" s3direct
    row "$s" GET cat      "baseline fs: cat files > /dev/null (x${kfiles[$s]})"
    row "$s" GET fsb      "lakehouse fs bucket" cat
    row "$s" GET s3direct "baseline s3: curl GET straight from s3rver"
    row "$s" GET s3b      "lakehouse s3 bucket (<- s3rver)" s3direct
done
echo "ratio = lakehouse MB/s / the baseline row above it. cp/cat rows: one process over (xK) files,"
echo "median of 3 such batches, less each process start (median /bin/true: $(printf '%.1f' "${start_ms[1M]}") / $(printf '%.1f' "${start_ms[64M]}") ms), per file;"
echo "cp alone leaves the data in the page cache; the fs bucket fsyncs each object and its folder."
echo "All GETs read from the page cache; the s3 rows include s3rver's own disk I/O."
