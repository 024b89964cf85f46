#!/usr/bin/env bash
# bench/catalog_scale — what a server pays for the size of its catalog: start time and
# per-query overhead at 10 to 10,000 datasets, and one dataset of 10,000 columns.
#
# Set-up: a server creates one two-row dataset ("seed") through HTTP; its manifest, data
# file and events batch (a create journals one, listed in its manifest) are then copied
# under new names (ds_00001 ...) straight into a bucket folder the way the server lays
# them out (src/catalog/README.md): the manifest is rewritten by DuckDB with the
# dataset's own name, data paths and events batch key, the files are copied as is, so
# each copy has its own batch as a created dataset has. Each count then gets a fresh data
# dir whose primary bucket hard-links the first N datasets and their batches.
#
# Per count:
#   start_s    wall time from `lakehouse serve` to the first answer of GET /health, on a
#              bucket the server has never opened: no catalog checkpoint, every manifest
#              read (load_ms: the catalog's own figure)
#   ckpt_s     the same once more on the same bucket, which now holds the checkpoint the
#              first server wrote: no manifest read
#   nockpt_s   a third start with [catalog] checkpoint = false (every manifest read again,
#              on a warm page cache)
#   select1    POST /query SELECT 1 (median of REPS, one keep-alive client)
#   one_ds     POST /query SELECT count(*) FROM one dataset (median of REPS)
# Wide: one dataset of WIDE columns and two rows, created through HTTP; start_s as above
# (without and with a checkpoint) and SELECT * FROM it (median of 5).
# usage: run.sh BUILD_DIR    env: COUNTS (default "10 100 1000 10000"), REPS (default 50),
#                                 WIDE (default 10000; 0 skips it)
# Never fails on speed.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
counts=${COUNTS:-"10 100 1000 10000"}
reps=${REPS:-50}
wide=${WIDE:-10000}
threads=4
. "$here/../common/lib.sh"

max=0
for n in $counts; do [ "$n" -gt "$max" ] && max=$n; done

# ---- the seed dataset, through the server --------------------------------------------
start_lakehouse
server_pid=${pids[-1]}
printf 'id,name\n1,a\n2,b\n' >"$work/seed.csv"
code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "$auth" --data-binary @"$work/seed.csv" \
    "$lh/ingest/file?dataset=seed&format=csv&mode=create") || true
[ "$code" = 201 ] || failed "creating the seed dataset answered $code"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
seed="$work/data/buckets/primary/datasets/seed"

# ---- N copies of it, written as the server would --------------------------------------
duck="$root/third_party/duckdb"
cc -O2 -o "$work/duckdb_raw" "$here/../common/duckdb_raw.c" -I"$duck/include" \
    -L"$duck/lib" -lduckdb -Wl,-rpath,"$duck/lib"
t0=$EPOCHREALTIME
python3 - "$seed" "$work/master" "$max" "$work/gen.sql" "$work/data/buckets/primary/_journal/events" <<'PY'
import os, shutil, sys
seed, master, n, sql, journal = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
manifest = os.path.join(seed, "_manifest", sorted(os.listdir(os.path.join(seed, "_manifest")))[-1])
data = sorted(os.listdir(os.path.join(seed, "data")))
batches = [b for b in os.listdir(journal) if b.endswith("_seed_v1.parquet")]
assert len(batches) == 1, batches
batch = batches[0]
os.makedirs(os.path.join(master, "_events"))
with open(sql, "w") as out:
    for i in range(1, n + 1):
        name = "ds_%05d" % i
        d = os.path.join(master, name)
        os.makedirs(os.path.join(d, "_manifest"))
        os.makedirs(os.path.join(d, "data"))
        for f in data:
            shutil.copyfile(os.path.join(seed, "data", f), os.path.join(d, "data", f))
        own_batch = batch.replace("_seed_v1.parquet", "_%s_v1.parquet" % name)
        shutil.copyfile(os.path.join(journal, batch), os.path.join(master, "_events", own_batch))
        out.write("COPY (SELECT * REPLACE (CASE WHEN record = 'dataset' THEN '%s' ELSE name END AS name, "
                  "replace(replace(path, 'datasets/seed/', 'datasets/%s/'), '%s', '%s') AS path) "
                  "FROM read_parquet('%s')) TO '%s' (FORMAT parquet, COMPRESSION zstd)\n"
                  % (name, name, batch, own_batch, manifest,
                     os.path.join(d, "_manifest", os.path.basename(manifest))))
PY
"$work/duckdb_raw" -t 2 -f "$work/gen.sql" >/dev/null 2>"$work/raw.err" || failed "generating manifests failed"
gen_s=$(echo "$EPOCHREALTIME - $t0" | bc -l)

# ---- measuring -------------------------------------------------------------------------
client() { # method path body reps -> one line of seconds per request
    python3 "$here/../query/client.py" 127.0.0.1 "$port" "$token" "$1" "$2" "$3" "$4" "$work/body" ||
        failed "$1 $2 failed"
}
ms_median() { median | awk '{ printf "%.3f", $1 * 1000 }'; }
serve() { # data_dir [env...] -> starts a server there; sets server_pid, port, token, start_s, load_ms
    local dir=$1; shift
    port=$(free_port)
    sed -e "s|^port = .*|port = $port|" -e "s|^data_dir = .*|data_dir = \"$dir\"|" \
        "$work/lakehouse.toml" >"$dir.toml"
    local t0=$EPOCHREALTIME
    env "$@" "$build/lakehouse" serve --config "$dir.toml" >>"$dir.log" 2>&1 & server_pid=$!; pids+=($server_pid)
    for _ in $(seq 6000); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || failed "the server exited: $(tail -5 "$dir.log")"
        sleep 0.01
    done
    start_s=$(echo "$EPOCHREALTIME - $t0" | bc -l)
    # the catalog's line: other modules log a load_ms of their own (workspaces)
    load_ms=$(grep '"msg":"catalog loaded"' "$dir.log" | tail -1 | grep -o '"load_ms":[0-9]*' | cut -d: -f2)
    token=$(cat "$dir/admin.token")
}
stop() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; }
wait_checkpoint() { # data_dir: until its server logged that it wrote a catalog checkpoint
    for _ in $(seq 12000); do
        grep -q '"msg":"catalog: checkpoint written"' "$1.log" && return 0
        sleep 0.01
    done
    failed "no catalog checkpoint written: $(tail -5 "$1.log")"
}
query_ms() { # sql -> median ms
    local req t=()
    req=$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1]}))' "$1")
    mapfile -t t < <(client POST /query "$req" $((reps + 1)) | tail -n "$reps")
    printf '%s\n' "${t[@]}" | ms_median
}

rows=()
for n in $counts; do
    dir="$work/n$n"
    mkdir -p "$dir/buckets/primary/datasets" "$dir/buckets/primary/_journal/events"
    # awk, not head: head leaves early and pipefail would end the script on ls's SIGPIPE
    (cd "$work/master" && ls | awk -v n="$n" '/^ds_/ && ++k <= n' | xargs -I{} cp -al {} "$dir/buckets/primary/datasets/")
    (cd "$work/master/_events" && ls | awk -v n="$n" 'NR <= n' | xargs -I{} cp -al {} "$dir/buckets/primary/_journal/events/")
    serve "$dir"; first_s=$start_s; first_load=$load_ms
    s1=$(query_ms "SELECT 1")
    one=$(query_ms "SELECT count(*) AS n FROM ds_00001")
    [ "$(json_rows "$work/body")" = 1 ] || failed "SELECT count(*) FROM ds_00001 gave no row"
    wait_checkpoint "$dir"
    stop
    serve "$dir"; ckpt_s=$start_s; ckpt_load=$load_ms
    grep -qE '"from_checkpoint":'"$n"'[,}]' "$dir.log" || failed "the second start did not use the checkpoint"
    stop
    serve "$dir" LAKEHOUSE_CATALOG_CHECKPOINT=false; stop
    rows+=("$(printf '%-9s %9.2f %9s %9.2f %9s %9.2f %9s %10s %10s' "$n" "$first_s" "$first_load" "$ckpt_s" "$ckpt_load" "$start_s" "$load_ms" "$s1" "$one")")
    rm -rf "$dir"
done

wide_row=""
if [ "$wide" -gt 0 ]; then
    dir="$work/wide"; mkdir -p "$dir"
    python3 - "$wide" "$work/wide.csv" <<'PY'
import sys
n = int(sys.argv[1])
with open(sys.argv[2], "w") as f:
    f.write(",".join("c%d" % i for i in range(n)) + "\n")
    for r in range(2):
        f.write(",".join(str(r * n + i) for i in range(n)) + "\n")
PY
    serve "$dir"
    code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "Authorization: Bearer $token" \
        --data-binary @"$work/wide.csv" "http://127.0.0.1:$port/ingest/file?dataset=wide&format=csv&mode=create") || true
    [ "$code" = 201 ] || failed "creating the wide dataset answered $code"
    stop
    serve "$dir"; wide_s=$start_s; wide_load=$load_ms
    t=(); req='{"sql": "SELECT * FROM wide"}'
    mapfile -t t < <(client POST /query "$req" 6 | tail -n 5)
    wide_select=$(printf '%s\n' "${t[@]}" | ms_median)
    wait_checkpoint "$dir"
    stop
    serve "$dir"; stop
    wide_row=$(printf 'wide: 1 dataset of %d columns: start %.2f s (load_ms %s), with checkpoint %.2f s (load_ms %s), SELECT * %s ms' \
        "$wide" "$wide_s" "$wide_load" "$start_s" "$load_ms" "$wide_select")
fi

echo "bench/catalog_scale: two-row datasets on a local folder bucket, server threads=$threads, cores=$(nproc), load average $(cut -d' ' -f1 /proc/loadavg); set-up of $max datasets $(printf '%.1f' "$gen_s") s; query figures: median of $reps, one keep-alive client"
printf '%-9s %9s %9s %9s %9s %9s %9s %10s %10s\n' datasets start_s load_ms ckpt_s load_ms nockpt_s load_ms select1_ms one_ds_ms
printf '%s\n' "${rows[@]}"
[ -n "$wide_row" ] && echo "$wide_row"
echo "start_s: serve to first /health answer on a bucket never opened (no checkpoint); ckpt_s: again, reading the checkpoint the first start wrote; nockpt_s: again with [catalog] checkpoint = false."
