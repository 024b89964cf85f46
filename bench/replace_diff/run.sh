#!/usr/bin/env bash
# bench/replace_diff — the cost of journaling a replace as a field-level diff (ADR-012).
# Loads the demo at SCALE and takes its largest table (timesheets), then, REPS times each
# and in the same run:
#   diff     POST /ingest/file mode=replace of a copy with ~1% of rows changed (hours of
#            every 100th timesheet) into a dataset with primary key timesheet_id: the
#            replace computes the diff (DuckDB full outer join of the rows before with the
#            new file) and writes one event per changed field
#   no diff  the same replace into a copy of the table without a primary key: one
#            dataset-level event
# Each replace goes back to the original table first (itself a replace, not timed).
# Reports median replace time of each, the ratio, and the events the diff wrote. Never
# fails on speed.
# usage: run.sh BUILD_DIR     env: SCALE (default 0.5), REPS (default 3)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scale=${SCALE:-0.5}
reps=${REPS:-3}
threads=4
. "$here/../common/lib.sh"

export LAKEHOUSE_CATALOG_COMPACT_AFTER_DELTAS=0
start_lakehouse_demo

export_parquet() { # sql file
    local code
    code=$(curl -sS -o "$2" -w '%{http_code}' -H "$auth" -H 'Content-Type: application/json' \
        --data-binary "$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1], "format": "parquet", "limit": 100000000}))' "$1")" \
        "$lh/query") || true
    [ "$code" = 200 ] || { cp "$2" "$work/body"; failed "export answered $code"; }
}
export_parquet "SELECT * FROM timesheets ORDER BY timesheet_id" "$work/orig.parquet"
export_parquet "SELECT timesheet_id, placement_id, week_start, CASE WHEN timesheet_id % 100 = 0 THEN hours + 1 ELSE hours END AS hours, status FROM timesheets ORDER BY timesheet_id" "$work/changed.parquet"

ingest() { # dataset mode file extra-params -> "ms" ; answer in $work/body
    local code t0 t1
    t0=$EPOCHREALTIME
    code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "$auth" --data-binary @"$3" \
        "$lh/ingest/file?dataset=$1&format=parquet&mode=$2$4") || true
    t1=$EPOCHREALTIME
    [ "$code" = 201 ] || failed "ingest $1 $2 answered $code"
    echo "($t1 - $t0) * 1000" | bc -l
}
ingest ts_pk create "$work/orig.parquet" "&primary_key=timesheet_id" >/dev/null
ingest ts_flat create "$work/orig.parquet" "" >/dev/null
rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$work/body")

diff_ms=() flat_ms=()
for _ in $(seq "$reps"); do
    diff_ms+=("$(ingest ts_pk replace "$work/changed.parquet" "")")
    journal=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["journal"]))' "$work/body")
    flat_ms+=("$(ingest ts_flat replace "$work/changed.parquet" "")")
    ingest ts_pk replace "$work/orig.parquet" "" >/dev/null
    ingest ts_flat replace "$work/orig.parquet" "" >/dev/null
done
d=$(printf '%s\n' "${diff_ms[@]}" | median)
f=$(printf '%s\n' "${flat_ms[@]}" | median)
printf 'bench/replace_diff: timesheets at demo scale %s: %s rows, ~1%% changed; %s reps, load %s\n' \
    "$scale" "$rows" "$reps" "$load"
printf '  replace with diff (primary key)    %8.0f ms (median)\n' "$d"
printf '  replace without diff (no key)      %8.0f ms (median)\n' "$f"
printf '  diff costs                         %8.2fx  (+%.0f ms)\n' "$(echo "$d / $f" | bc -l)" "$(echo "$d - $f" | bc -l)"
printf '  journal of the diff: %s\n' "$journal"
