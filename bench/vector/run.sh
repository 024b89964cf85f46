#!/usr/bin/env bash
# bench/vector — our HNSW index beside hnswlib (Debian libhnswlib-dev) in one process on the
# same clustered vectors: build time (THREADS threads), recall@10 against exact search and
# single-thread latency at several ef, memory; our exact search beside a plain loop;
# the same graph with int8 codes beside float (bytes per vector, resident memory, recall,
# latency; N=1000000 DIM=384 gives the ceiling figures of src/vector/README.md);
# planted outliers found by each; the same on a real data set (words.c: Debian's word
# list through the builtin model). See bench.cpp for the details. Then crossing.c: graph
# and exact search side by side by index size and dimension. Then api.sh: an index over the demo resumes through the
# HTTP API beside exact search. Never fails on speed.
# usage: run.sh BUILD_DIR     env: N (default 100000), DIM (768), QUERIES (200),
#        THREADS (2), M (16), EF_CONSTRUCTION (80), EFS ("10 30 60 100 200")
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ -f /usr/include/hnswlib/hnswlib.h ] || { echo "bench/vector: libhnswlib-dev is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# -march=native for hnswlib too: it picks its SIMD at compile time, as its docs advise
g++ -O3 -march=native -std=c++17 -I"$root/src" -o "$work/bench" "$here/bench.cpp" \
    "$build/liblh_vector.a" "$build/liblh_core.a" $(pkg-config --libs jansson libcrypto) -lpthread -lm
read -r -a efs <<<"${EFS:-10 30 60 100 200}"
"$work/bench" "${N:-100000}" "${DIM:-768}" "${QUERIES:-200}" "${THREADS:-2}" "${M:-16}" \
    "${EF_CONSTRUCTION:-80}" "${efs[@]}"
# a real data set a Debian package ships: the 104K words of wamerican, builtin model
gcc -O2 -std=c11 -I"$root/src" -o "$work/words" "$here/words.c" "$build/liblh_vector.a" \
    "$build/liblh_catalog.a" "$build/liblh_engine.a" "$build/liblh_storage.a" "$build/liblh_core.a" \
    -L"$root/third_party/duckdb/lib" -lduckdb -Wl,-rpath,"$root/third_party/duckdb/lib" \
    $(pkg-config --libs jansson libcrypto libcurl libzstd) -lpthread -lm
"$work/words" "$work/words"
BENCH_DATA="file:$work/words" "$work/bench" 1000000 384 1000 "${THREADS:-2}" "${M:-16}" \
    "${EF_CONSTRUCTION:-80}" "${efs[@]}"
# where exact search is as cheap as the graph, by dimension ([vector] exact_below_vectors)
gcc -O2 -std=c11 -I"$root/src" -o "$work/crossing" "$here/crossing.c" \
    "$build/liblh_vector.a" "$build/liblh_core.a" $(pkg-config --libs jansson libcrypto) -lpthread -lm
"$work/crossing" "${QUERIES:-200}"
# and an index over the demo resumes through the HTTP API
"$here/api.sh" "$build"
