#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs every test through
# ctest: the unit tests, then the integration scenarios against a real PostgreSQL and a real
# Kafka broker that the tests start themselves.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" --test
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900
