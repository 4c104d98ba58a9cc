#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs every test:
#   1. the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (clang-19);
#   2. each libFuzzer target for FUZZ_SECONDS (default 60) from its committed corpus;
#   3. every ctest test of the normal build: unit tests, then the integration scenarios against a
#      real PostgreSQL and a real Kafka broker that the tests start themselves.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" --test
"$root/scripts/build.sh"
echo "== unit tests under ASan/UBSan"
"$root/scripts/sanitize.sh"
echo "== fuzzing, ${FUZZ_SECONDS:-60}s per target"
"$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-60}"
echo "== all tests"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900
