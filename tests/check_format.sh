#!/usr/bin/env bash
# The C sources follow the checked-in .clang-format: this test fails, naming the files and
# lines, when one does not. Fix with: clang-format -i FILE (or every file under src/ and
# tests/unit/).
set -euo pipefail
cd "${LH_SOURCE_DIR:-$(dirname "$0")/..}"
mapfile -t files < <(find src tests/unit -name '*.[ch]' | sort)
if ! out=$(clang-format --dry-run -Werror "${files[@]}" 2>&1); then
    printf '%s\n' "$out" | grep -E '^[^ ].*(warning|error):' | head -40
    echo "$(printf '%s\n' "$out" | grep -cE '(warning|error):') lines differ from .clang-format"
    exit 1
fi
echo "${#files[@]} files formatted as .clang-format says"
