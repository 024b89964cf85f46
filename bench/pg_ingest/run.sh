#!/usr/bin/env bash
# bench/pg_ingest — PostgreSQL → dataset through POST /ingest/db beside the server's own
# export speed, in the same run, on loopback:
#   floor      psql -c "\copy (SELECT * FROM bench) TO STDOUT" > /dev/null — PostgreSQL
#              producing and psql receiving the rows, nothing written
#   copy       POST /ingest/db {"table": "bench", "method": "copy"}, end to end: one
#              REPEATABLE READ READ ONLY snapshot, COPY ... TO STDOUT (FORMAT binary)
#              decoded into typed batches, DuckDB writing each batch as zstd Parquet
#              while the next arrives, store (fsync) and manifest commit
#   cursor     the same with "method": "cursor" (FETCH 10000 rows at a time from a
#              server-side cursor, binary results), to decide which streaming method to keep
# The table has ROWS rows (default 2,000,000) of 13 columns (bigint, text x5, numeric,
# double, boolean, date, timestamptz, integer, uuid), generated once. One untimed warm-up
# of each side, then REPS reps alternating; figures are medians. Ratio = floor time /
# ours (the project's target is >= 0.7). MB/s counts the floor's bytes of COPY text.
# PostgreSQL runs from a fresh initdb in a temp dir (as the postgres user when root),
# stopped by PID. Never fails on speed.
# usage: run.sh BUILD_DIR     env: ROWS (default 2000000), REPS (default 3), BATCH_ROWS
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rows=${ROWS:-2000000}
reps=${REPS:-3}
batch_rows=${BATCH_ROWS:-250000}
threads=4
. "$here/../common/lib.sh"

# ---- PostgreSQL ---------------------------------------------------------------------------
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || failed "PostgreSQL server binaries not found (apt-get install postgresql)"
pgdir=$(mktemp -d /tmp/lh-bench-pg-XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$pgdir"; as_pg=(runuser -u postgres --); fi
pgport=$(free_port)
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$pgdir/initdb.log" 2>&1 || failed "initdb failed: $(tail -5 "$pgdir/initdb.log")"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w \
    -o "-p $pgport -h 127.0.0.1 -k $pgdir -c fsync=off -c shared_buffers=256MB" start >/dev/null ||
    failed "postgres did not start: $(tail -5 "$pgdir/postgres.log")"
pgpid=$(head -1 "$pgdir/data/postmaster.pid")
stop_pg() { kill -INT "$pgpid" 2>/dev/null || true; while kill -0 "$pgpid" 2>/dev/null; do sleep 0.1; done; rm -rf "$pgdir"; }
trap 'stop_pg; cleanup' EXIT
dsn="postgresql://postgres@127.0.0.1:$pgport/postgres"
psql_() { psql -XAtq -v ON_ERROR_STOP=1 -d "$dsn" "$@"; }

psql_ -c "CREATE TABLE bench AS SELECT g::bigint AS id, 'name ' || g AS name,
    'user' || g || '@example.com' AS email, (ARRAY['Chicago','Austin','Denver','Boston'])[g % 4 + 1] AS city,
    'Senior Engineer ' || (g % 50) AS title, (g % 100000)::numeric(10,2) / 7 AS salary,
    g * 0.25 AS rate, g % 3 = 0 AS active, '2020-01-01'::date + (g % 2000) AS hired,
    '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second' AS updated_at,
    (g % 1000)::int AS score, md5(g::text) AS notes, md5(g::text)::uuid AS ref
    FROM generate_series(1, $rows) g" >/dev/null
psql_ -c "VACUUM ANALYZE bench" >/dev/null
copy_bytes=$(psql_ -c "\\copy (SELECT * FROM bench) TO STDOUT" | wc -c)

start_lakehouse

floor_once() { local t0=$EPOCHREALTIME; psql_ -c "\\copy (SELECT * FROM bench) TO STDOUT" >/dev/null; echo "$EPOCHREALTIME - $t0" | bc -l; }
n_ds=0
ours_once() { # method -> seconds (also leaves the answer in $work/body)
    n_ds=$((n_ds + 1))
    local body t0 code
    body=$(printf '{"dsn": "%s", "table": "bench", "dataset": "bench_%d", "method": "%s", "batch_rows": %d}' \
        "$dsn" "$n_ds" "$1" "$batch_rows")
    t0=$EPOCHREALTIME
    code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "$auth" -H 'Content-Type: application/json' \
        -d "$body" "$lh/ingest/db") || true
    local t1=$EPOCHREALTIME
    [ "$code" = 201 ] || failed "POST /ingest/db answered $code"
    local got
    got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$work/body")
    [ "$got" = "$rows" ] || failed "ingested $got rows, expected $rows"
    # drop it again so the disk holds one copy at a time
    curl -sS -o /dev/null -X DELETE -H "$auth" "$lh/catalog/datasets/bench_$n_ds"
    echo "$t1 - $t0" | bc -l
}
timing() { python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timings_ms"]; print(t["read"], t["convert"])' "$work/body"; }

floor_once >/dev/null; ours_once copy >/dev/null; ours_once cursor >/dev/null
f=(); c=(); k=(); c_read=(); c_conv=()
for ((i = 0; i < reps; i++)); do
    f+=("$(floor_once)")
    c+=("$(ours_once copy)"); read -r r v < <(timing); c_read+=("$r"); c_conv+=("$v")
    k+=("$(ours_once cursor)")
done
fm=$(printf '%s\n' "${f[@]}" | median)
cm=$(printf '%s\n' "${c[@]}" | median)
km=$(printf '%s\n' "${k[@]}" | median)
crm=$(printf '%s\n' "${c_read[@]}" | median)
ccm=$(printf '%s\n' "${c_conv[@]}" | median)

echo "bench/pg_ingest — $rows rows x 13 columns, $((copy_bytes / 1048576)) MiB as COPY text; batch_rows $batch_rows; $reps reps (median); load before: $load"
printf '%-44s %9s %12s %9s %8s\n' "path" "seconds" "rows/s" "MB/s" "ratio"
row() { # label seconds
    awk -v l="$1" -v s="$2" -v n="$rows" -v b="$copy_bytes" -v f="$fm" \
        'BEGIN { printf "%-44s %9.3f %12.0f %9.1f %8.2f\n", l, s, n / s, b / s / 1e6, f / s }'
}
row "floor: psql \\copy TO STDOUT > /dev/null" "$fm"
row "lakehouse /ingest/db method=copy" "$cm"
row "lakehouse /ingest/db method=cursor" "$km"
echo "ratio = floor seconds / ours (target >= 0.7). method=copy inside the server (median ms):"
echo "  streaming and decoding from PostgreSQL into batches: $crm; DuckDB batch -> Parquet, summed over batches (overlaps the stream): $ccm"
