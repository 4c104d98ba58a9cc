#!/usr/bin/env bash
# Instruction profile of outboxd's hot path with valgrind's callgrind (instruction counts do not
# depend on the machine's load): a backlog catch-up of N events (default 20,000; 5-event
# transactions, jsonb payloads of about 70 bytes) from a pgoutput slot into a real Kafka broker,
# with a RelWithDebInfo build (BENCH_BUILD_DIR, default build-prof/, configured without tests
# when new; an existing build folder, e.g. build/ of scripts/build.sh, is used as configured). outboxd runs under callgrind from its start
# until its confirmed LSN reaches the backlog's end, then gets SIGTERM. Prints the instructions
# per event of the whole process (start-up included) and of the main thread's event loop, then
# the functions with the most inclusive and self cost, per event.
#   bench/profile.sh [EVENTS]
# BENCH_PROFILE_OUT (default: the work folder, deleted unless BENCH_KEEP_WORK=1) keeps the
# callgrind.out file there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
events=${1:-20000}
per_txn=5
build=${BENCH_BUILD_DIR:-$root/build-prof}

"$root/scripts/install-deps.sh" --test >/dev/null
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOXD_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j 2 --target outboxd >/dev/null

bench_stop() { [ -n "$outboxd_pid" ] && kill -KILL "$outboxd_pid" 2>/dev/null || true; }
outboxd_pid=""
bench_services profile outboxd
bench_fill "$events" "$per_txn"
end_lsn=$(psql -X -At "$dsn" -c "SELECT pg_current_wal_lsn()")
end_num=$(( (16#${end_lsn%/*} << 32) | 16#${end_lsn#*/} ))

metrics_port=$(. "$root/integration-tests/env/lib.sh"; free_port)
cat >"$work/outboxd.yaml" <<YAML
source:
  postgres:
    dsn: "$dsn"
    slot: outboxd
    publication: bench
    create_slot: false
    create_publication: false
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
metrics:
  listen: "127.0.0.1:$metrics_port"
log:
  level: warn
YAML
out=${BENCH_PROFILE_OUT:-$work}/callgrind.out
mkdir -p "$(dirname "$out")"
valgrind --tool=callgrind --callgrind-out-file="$out" "$build/outboxd" --config "$work/outboxd.yaml" \
  2>"$work/outboxd.log" &
outboxd_pid=$!
for _ in $(seq 1 3000); do
  confirmed=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null | awk '/^outboxd_confirmed_flush_lsn /{printf "%.0f", $2}' || true)
  if [ -n "$confirmed" ] && [ "$confirmed" -ge "$end_num" ] 2>/dev/null; then break; fi
  kill -0 "$outboxd_pid" 2>/dev/null || { cat "$work/outboxd.log"; exit 1; }
  sleep 0.2
done
kill -TERM "$outboxd_pid"
wait "$outboxd_pid" || true
outboxd_pid=""

# callgrind_annotate's lines: "  1,234,567 (12.34%)  file:function [object]" (one line per source
# file a function's code comes from, inlined headers included). Prints them as
# "instructions/event  function (file) [object]", with argument lists and template arguments cut.
per_event() {
  awk -v n="$events" '
    /^ *[0-9][0-9,]* \( *[0-9.]+%\)  / {
      c = $1; gsub(",", "", c)
      line = $0; sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, "", line)
      obj = ""; if (match(line, / \[[^]]*\]$/)) { obj = substr(line, RSTART + 2, RLENGTH - 3); line = substr(line, 1, RSTART - 1) }
      sub(/.*\//, "", obj)
      file = line; sub(/:.*/, "", file); sub(/.*\//, "", file)
      if (line !~ /^\?\?\?:/) sub(/^[^:]*:/, "", line); else sub(/^\?\?\?:/, "", line)
      if (line !~ /^\(/) sub(/\(.*/, "", line)
      while (gsub(/<[^<>]*>/, "", line) > 0) {}
      printf "%10.0f  %s (%s) [%s]\n", c / n, substr(line, 1, 110), file, obj
    }'
}
out_annotated() { callgrind_annotate --inclusive="$1" --threshold=99 "$out" 2>/dev/null || true; }
out_annotated yes >"$work/inclusive.txt"
out_annotated no >"$work/self.txt"
total=$(awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}' "$work/inclusive.txt")
echo "events:               $events (catch-up, $per_txn-event transactions)"
echo "process total:        $total instructions, $((total / events)) per event (start-up, librdkafka threads and shutdown included)"
# The call-site lines ("=> file:function (Nx)", shown here with an empty [object]) hold a
# function's whole inclusive cost; the summary lines split it by the source file each piece of
# inlined code came from.
echo "outboxd's own steps (inclusive cost of the calls, per event):"
per_event <"$work/inclusive.txt" \
  | grep -E ' outboxd::[a-zA-Z:]+::(handleFrame|route|produce|serveDeliveries|poll|decode|eventPublished) \((pipeline|router|kafka_sink|decoder|metrics)\.cpp\) \[\]$' \
  | awk '!seen[$0]++' | sort -rn || true
echo
echo "top inclusive (instructions per event):"
per_event <"$work/inclusive.txt" | head -n "${BENCH_PROFILE_TOP:-40}" || true
echo
echo "top self (instructions per event):"
per_event <"$work/self.txt" | head -n "${BENCH_PROFILE_TOP:-40}" || true
