#!/usr/bin/env bash
# The benchmarks' own programs still compile against the current headers and libraries
# (they are not part of the build, so nothing else would notice: bench.cpp once stopped
# compiling for several sessions). Compiles each one as its run.sh does; runs nothing.
# usage: check_bench_build.sh BUILD_DIR   (LH_SOURCE_DIR: the source tree)
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "${LH_SOURCE_DIR:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
duck="$root/third_party/duckdb"
libs="$(pkg-config --libs jansson libcrypto) -lpthread -lm"
g++ -O1 -march=native -std=c++17 -I"$root/src" -o "$work/bench" "$root/bench/vector/bench.cpp" \
    "$build/liblh_vector.a" "$build/liblh_core.a" $libs
gcc -O1 -std=c11 -I"$root/src" -o "$work/crossing" "$root/bench/vector/crossing.c" \
    "$build/liblh_vector.a" "$build/liblh_core.a" $libs
gcc -O1 -std=c11 -I"$root/src" -o "$work/words" "$root/bench/vector/words.c" \
    "$build/liblh_vector.a" "$build/liblh_catalog.a" "$build/liblh_engine.a" \
    "$build/liblh_storage.a" "$build/liblh_core.a" -L"$duck/lib" -lduckdb \
    $(pkg-config --libs libcurl libzstd) $libs
cc -O1 -o "$work/duckdb_raw" "$root/bench/common/duckdb_raw.c" -I"$duck/include" -L"$duck/lib" -lduckdb
cc -O1 -o "$work/baseline_mhd" "$root/bench/http_gateway/baseline_mhd.c" \
    $(pkg-config --cflags --libs libmicrohttpd)
cc -O1 -Wall -Werror -o "$work/http_probe" "$root/bench/vector/http_probe.c"
echo "bench programs compile: bench.cpp, crossing.c, words.c, duckdb_raw.c, baseline_mhd.c, http_probe.c"
