#!/usr/bin/env bash
# Idempotent set-up for building, running and testing lakehouse on Debian 12.
#
#  - installs the Debian packages the build and the tests need (only when missing);
#  - fetches the pinned DuckDB 1.4.4 C API into third_party/duckdb/ (header from the
#    duckdb@1.4.4 npm source package, libduckdb.so from the @duckdb/node-bindings
#    package for this CPU), verifying each tarball against its pinned sha512 integrity.
#    Tarballs are cached in ~/.cache/lakehouse/ so a fresh clone does not download again.
#    Set DUCKDB_DIR to an official DuckDB release folder to skip the fetch.
#  - fetches the pinned libraries the web console embeds (CodeMirror 5, uPlot) into
#    third_party/ui/, verified the same way; the build compiles them into the binary.
#
# Prints nothing when everything is already in place.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LAKEHOUSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse}

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ---- Debian packages --------------------------------------------------------------
packages=(build-essential cmake pkg-config ca-certificates curl
          libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev
          libpq-dev libzstd-dev libcmocka-dev libxml2-dev python3-botocore
          postgresql postgresql-client libhnswlib-dev wamerican
          python3 nodejs npm clang-format json-schema-test-suite zlib1g-dev chromium
          libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
          python3-grpcio python3-grpc-tools)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        # nodejs/npm may come from elsewhere (a newer node on PATH is fine).
        case "$p" in
            nodejs) command -v node >/dev/null 2>&1 && continue ;;
            npm) command -v npm >/dev/null 2>&1 && continue ;;
            python3) command -v python3 >/dev/null 2>&1 && continue ;;
        esac
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root or install them"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- npm packages the tests run: s3rver (the S3 server on loopback), the official MCP
# SDK (its client drives /mcp in tests/e2e/mcp/) and puppeteer-core (drives Debian's
# chromium through the console in tests/e2e/ui/). One npm install for all of them: npm
# prunes what a later install in the same folder does not name.
node_pins=("s3rver@3.7.1" "@modelcontextprotocol/sdk@1.32.2" "puppeteer-core@24.43.1")
node_dir="$root/tests/.node"
node_missing=0
for pin in "${node_pins[@]}"; do
    pkg=${pin%@*} version=${pin##*@}
    grep -q "\"version\": \"$version\"" "$node_dir/node_modules/$pkg/package.json" 2>/dev/null ||
        node_missing=1
done
[ -x "$node_dir/node_modules/.bin/s3rver" ] || node_missing=1
if [ $node_missing = 1 ]; then
    say "installing ${node_pins[*]} for the tests"
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm install --silent --no-audit --no-fund --no-save --prefix . \
        "${node_pins[@]}" >/dev/null 2>"$node_dir/npm.log") ||
        die "npm install ${node_pins[*]} failed (see tests/.node/npm.log)"
    # the SDK is ESM with an exports map: check the client entry points the tests import load
    (cd "$node_dir" && node --input-type=module -e '
        await import("@modelcontextprotocol/sdk/client/index.js");
        await import("@modelcontextprotocol/sdk/client/streamableHttp.js");
        await import("@modelcontextprotocol/sdk/client/stdio.js");
        await import("puppeteer-core");' 2>>"$node_dir/npm.log") ||
        die "the test clients (MCP SDK, puppeteer-core) do not load (see tests/.node/npm.log)"
fi

# ---- pinned tarballs from the npm registry ----------------------------------------------
sri_of() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

fetch() { # fetch PKG TGZ SRI: leaves a verified $cache/npm/TGZ
    local pkg=$1 tgz=$2 sri=$3 file="$cache/npm/$2"
    if [ -f "$file" ] && [ "$(sri_of "$file")" = "$sri" ]; then
        return 0
    fi
    mkdir -p "$cache/npm"
    say "fetching $pkg"
    rm -f "$file"
    (cd "$cache/npm" && npm pack --silent "$pkg" >/dev/null 2>"$cache/npm/npm.log") ||
        die "npm pack $pkg failed (see $cache/npm/npm.log)"
    [ -f "$file" ] || die "npm pack $pkg did not produce $tgz"
    if [ "$(sri_of "$file")" != "$sri" ]; then
        rm -f "$file"
        die "$tgz does not match its pinned integrity $sri"
    fi
}
command -v openssl >/dev/null 2>&1 || die "openssl is needed to verify downloads"

# ---- the web console's libraries (embedded in the binary at build time) -----------------
cm_sri="sha512-6teYk0bA0nR3QP0ihGMoxuKzpl5W80FpnHpBJpgy66NK3cZv5b/d/HY8PnRvfSsCG1MTfr92u2WUl+wT0E40mQ=="
up_sri="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
ui_dest="$root/third_party/ui"
ui_files=(codemirror/lib/codemirror.js codemirror/lib/codemirror.css codemirror/mode/sql/sql.js
          codemirror/addon/hint/show-hint.js codemirror/addon/hint/show-hint.css
          codemirror/addon/hint/sql-hint.js codemirror/LICENSE
          uplot/dist/uPlot.esm.js uplot/dist/uPlot.min.css uplot/LICENSE)
ui_ok=1
[ "$(cat "$ui_dest/.stamp" 2>/dev/null)" = "$cm_sri $up_sri" ] || ui_ok=0
for f in "${ui_files[@]}"; do [ -f "$ui_dest/$f" ] || ui_ok=0; done
if [ $ui_ok = 0 ]; then
    fetch codemirror@5.65.21 codemirror-5.65.21.tgz "$cm_sri"
    fetch uplot@1.6.32 uplot-1.6.32.tgz "$up_sri"
    rm -rf "$ui_dest"
    mkdir -p "$ui_dest/codemirror" "$ui_dest/uplot"
    tar -xzf "$cache/npm/codemirror-5.65.21.tgz" -C "$ui_dest/codemirror" --strip-components=1 \
        package/lib/codemirror.js package/lib/codemirror.css package/mode/sql/sql.js \
        package/addon/hint/show-hint.js package/addon/hint/show-hint.css \
        package/addon/hint/sql-hint.js package/LICENSE
    tar -xzf "$cache/npm/uplot-1.6.32.tgz" -C "$ui_dest/uplot" --strip-components=1 \
        package/dist/uPlot.esm.js package/dist/uPlot.min.css package/LICENSE
    printf '%s' "$cm_sri $up_sri" >"$ui_dest/.stamp"
    say "console libraries ready in third_party/ui (CodeMirror 5.65.21, uPlot 1.6.32)"
fi

# ---- DuckDB -------------------------------------------------------------------------
if [ -n "${DUCKDB_DIR:-}" ]; then
    [ -f "$DUCKDB_DIR/duckdb.h" ] || [ -f "$DUCKDB_DIR/include/duckdb.h" ] ||
        die "DUCKDB_DIR=$DUCKDB_DIR holds no duckdb.h"
    exit 0
fi

duckdb_version=1.4.4
src_pkg="duckdb@$duckdb_version"
src_tgz="duckdb-$duckdb_version.tgz"
src_sri="sha512-hEJJ5hyVF0VLj3dmOLpsWrQR0b3d4Ykqtygm6iUXjHJDDnSqg/USKxcb5qvNrOhFYPgktayU6dXCtgPqcmmpog=="
case "$(uname -m)" in
    x86_64|amd64)
        bin_pkg="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
        bin_tgz="duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz"
        bin_sri="sha512-jBTL/WvfwxLToFa/pVHfT6elMtltJGnc3wSuxZD9OfMltit9YUdVFS37vBFQzXMT1Z8OWjtSjMh+zPKxOwHLHA==" ;;
    aarch64|arm64)
        # 1.4.4-r.4 was not published for arm64; r.3 carries the same DuckDB 1.4.4.
        bin_pkg="@duckdb/node-bindings-linux-arm64@1.4.4-r.3"
        bin_tgz="duckdb-node-bindings-linux-arm64-1.4.4-r.3.tgz"
        bin_sri="sha512-qF2/WhB+i+8is60RrpTY/5ZnywIUayuBiVXSuQ4rrRn1m1gvfKqPvjySbiDjYgQo/6OXu/fax0KC1gXnNWoLEA==" ;;
    *) die "no pinned DuckDB build for $(uname -m); set DUCKDB_DIR to a DuckDB release" ;;
esac

dest="$root/third_party/duckdb"
stamp="$dest/.stamp"
want_stamp="$src_sri $bin_sri"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] &&
   [ -f "$dest/include/duckdb.h" ] && [ -f "$dest/lib/libduckdb.so" ]; then
    exit 0
fi

fetch "$src_pkg" "$src_tgz" "$src_sri"
fetch "$bin_pkg" "$bin_tgz" "$bin_sri"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$cache/npm/$src_tgz" -C "$tmp" package/src/duckdb/src/include/duckdb.h
mkdir -p "$tmp/bin"
tar -xzf "$cache/npm/$bin_tgz" -C "$tmp/bin" package/libduckdb.so
rm -rf "$dest"
mkdir -p "$dest/include" "$dest/lib"
cp "$tmp/package/src/duckdb/src/include/duckdb.h" "$dest/include/duckdb.h"
cp "$tmp/bin/package/libduckdb.so" "$dest/lib/libduckdb.so"
printf '%s' "$want_stamp" >"$stamp"
say "DuckDB $duckdb_version ready in third_party/duckdb"
