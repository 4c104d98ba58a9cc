#!/usr/bin/env bash
# Configures and builds outboxd with CMake and Ninja.
#   scripts/build.sh [--release] [--no-tests] [--sanitize] [--target NAME]   (BUILD_DIR, default build/)
# --target builds only that target (e.g. outboxd-consume) instead of everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
type=RelWithDebInfo
tests=ON
sanitize=OFF
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) type=Release ;;
    --no-tests) tests=OFF ;;
    --sanitize) sanitize=ON ;;
    --target) [ $# -ge 2 ] || { echo "$0: --target needs a name" >&2; exit 2; }; targets+=(--target "$2"); shift ;;
    *) echo "usage: $0 [--release] [--no-tests] [--sanitize] [--target NAME]" >&2; exit 2 ;;
  esac
  shift
done
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DOUTBOXD_BUILD_TESTS="$tests" \
  -DOUTBOXD_SANITIZE="$sanitize" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
