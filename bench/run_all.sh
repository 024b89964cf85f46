#!/usr/bin/env bash
# Runs every benchmark under bench/ against the build in $1 (default build/).
# Benchmarks print figures beside their baseline; they never fail on speed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
for b in "$here"/*/run.sh; do
    echo
    "$b" "$build"
done
