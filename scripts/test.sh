#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs every test:
#   1. the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (clang-19);
#   2. each libFuzzer target for FUZZ_SECONDS (default 60) from its committed corpus;
#   3. the container test (scripts/container-test.sh: the image built with podman, streaming
#      against real services; skipped with OUTBOXD_CONTAINER_TEST=0);
#   4. the integration scenarios on PostgreSQL 18 (OUTBOXD_PG_VERSION=18, fetched from Maven Central
#      once; integration-tests/matrix.sh runs them on every version from 14 to 18);
#   5. integration-tests/debezium-compare.sh: Debezium Server 3.6.1 (fetched from Maven Central
#      once, about 780 MB; run on a Java 21 or later: DEBEZIUM_JAVA_HOME, JAVA_HOME or the newest
#      JDK under /usr/lib/jvm) and outboxd side by side on the same rows, case by case, on
#      PostgreSQL 15 (OUTBOXD_PG_VERSION picks another); skipped with OUTBOXD_DEBEZIUM_COMPARE=0;
#   6. every ctest test of the normal build: unit tests, then the integration scenarios against a
#      real PostgreSQL 15 and real Kafka brokers that the tests start themselves (printed last).
# Any failure stops the script with a non-zero exit code.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" --test
"$root/scripts/build.sh"
echo "== unit tests under ASan/UBSan"
"$root/scripts/sanitize.sh"
echo "== fuzzing, ${FUZZ_SECONDS:-60}s per target"
"$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-60}"
if [ "${OUTBOXD_CONTAINER_TEST:-1}" != 0 ]; then
  echo "== container test"
  "$root/scripts/container-test.sh"
fi
cd "${BUILD_DIR:-$root/build}"
echo "== integration tests on PostgreSQL 18"
OUTBOXD_PG_VERSION=18 ctest -L integration --output-on-failure --timeout 900
if [ "${OUTBOXD_DEBEZIUM_COMPARE:-1}" != 0 ]; then
  echo "== outboxd against Debezium Server (integration-tests/debezium-compare.sh)"
  "$root/integration-tests/debezium-compare.sh" --build "$PWD"
fi
echo "== all tests (integration on PostgreSQL 15)"
OUTBOXD_PG_VERSION=15 ctest --output-on-failure --timeout 900
