#!/usr/bin/env bash
# Configures and builds outboxd with CMake and Ninja.
#   scripts/build.sh [--release] [--no-tests] [--sanitize]   (BUILD_DIR, default build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
type=RelWithDebInfo
tests=ON
sanitize=OFF
for arg in "$@"; do
  case "$arg" in
    --release) type=Release ;;
    --no-tests) tests=OFF ;;
    --sanitize) sanitize=ON ;;
    *) echo "usage: $0 [--release] [--no-tests] [--sanitize]" >&2; exit 2 ;;
  esac
done
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DOUTBOXD_BUILD_TESTS="$tests" \
  -DOUTBOXD_SANITIZE="$sanitize" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
