#!/usr/bin/env bash
# Builds the unit tests with clang-19 under AddressSanitizer and UndefinedBehaviorSanitizer
# and runs them (ctest -L unit). BUILD_DIR defaults to build-asan/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$root/build-asan}
"$root/scripts/install-deps.sh" --test >/dev/null
CC=clang-19 CXX=clang++-19 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DOUTBOXD_SANITIZE=ON \
  >/dev/null
# Only what the unit tests run (not the integration scenarios, the bench tools or the example).
cmake --build "$build" -j "$(nproc)" --target outboxd_unit_test_binaries
cd "$build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -L unit --output-on-failure
