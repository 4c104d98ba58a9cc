#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-19 (AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs each for SECONDS (default 60) from its committed seed corpus under fuzz/corpus/.
# New inputs go to a scratch folder; a crash leaves its reproducer in fuzz/findings/ and fails.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pgoutput_fuzz copydata_fuzz config_fuzz payload_fuzz)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

"$root/scripts/install-deps.sh" --test >/dev/null
CC=clang-19 CXX=clang++-19 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOUTBOXD_FUZZ=ON -DOUTBOXD_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

mkdir -p "$root/fuzz/findings"
# fuzz_one TARGET: one target for SECONDS; prints its summary, fails on a finding.
fuzz_one() {
  local t=$1 scratch
  scratch=$(mktemp -d)
  echo "fuzz: $t for ${seconds}s"
  if ! (cd "$root/fuzz/findings" && "$build/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 "$scratch" "$root/fuzz/corpus/${t%_fuzz}" 2>"$scratch.log"); then
    tail -n 60 "$scratch.log"
    echo "fuzz: $t FAILED; reproducer in fuzz/findings/"
    rm -rf "$scratch" "$scratch.log"
    return 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|cov:' "$scratch.log" | tail -n 3
  echo "fuzz: $t ok"
  rm -rf "$scratch" "$scratch.log"
}
# As many targets at once as there are cores (each libFuzzer process uses one), each for its full
# SECONDS; their reports are printed in order once all have ended.
out=$(mktemp -d)
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$(nproc)" ]; then wait -n || true; running=$((running - 1)); fi
  ( if fuzz_one "$t" >"$out/$t.txt" 2>&1; then echo 0; else echo 1; fi >"$out/$t.rc" ) &
  running=$((running + 1))
done
wait
status=0
for t in "${targets[@]}"; do
  cat "$out/$t.txt"
  [ "$(cat "$out/$t.rc")" = 0 ] || status=1
done
rm -rf "$out"
exit $status
