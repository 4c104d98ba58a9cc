#!/usr/bin/env bash
# The catch-up cases of issue 14, one bench/catchup.sh run each (fresh services every time), and a
# summary table of the ratios each run measured:
#   200,000 and 1,000,000 events of about 100-byte payloads; 200,000 of 1 KB; 50,000 of 16 KB (0.8 GB
#   of payload: the WAL, the broker's log and the fill time of 200,000 would be four times that);
#   200,000 events over 100 aggregate types (100 topics, created on first use).
#   bench/catchup-matrix.sh [OUT_DIR]
# Each run's whole report is kept in OUT_DIR (default a new folder under /tmp). BENCH_SKIP_DEBEZIUM
# and the other variables of catchup.sh pass through; BENCH_MATRIX="events:bytes:types ..." replaces
# the cases.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d /tmp/outboxd-catchup-matrix.XXXXXX)}
mkdir -p "$out"
cases=${BENCH_MATRIX:-"200000:100:3 1000000:100:3 200000:1000:3 50000:16000:3 200000:100:100"}

field() {  # field FILE LABEL: the text after "LABEL:" on the report's line
  sed -n "s/^$2: *//p" "$1" | head -n 1
}
echo "| events | payload bytes | types | outboxd events/s (from start / from first event) | MB/s from start | outboxd / pg_recvlogical (from start, from first) | Kafka alone events/s | outboxd / lower ceiling | machine busy | Debezium events/s from first | outboxd / Debezium, start-ups excluded | outboxd peak RSS | report |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in $cases; do
  IFS=: read -r events bytes types <<<"$c"
  report="$out/catchup-$events-$bytes-$types.txt"
  if ! BENCH_PAYLOAD_BYTES=$bytes BENCH_AGGREGATE_TYPES=$types "$root/bench/catchup.sh" "$events" >"$report" 2>"$report.err"; then
    echo "| $events | $bytes | $types | FAILED: see $report.err | | | | | | | | | |"
    continue
  fi
  from_start=$(field "$report" outboxd | sed -E 's/.*\(([0-9]+) events\/s, ([0-9.]+) MB\/s.*/\1 \2/')
  from_first=$(field "$report" "outboxd from first" | sed -E 's/^([0-9]+) events.*/\1/')
  ratio=$(field "$report" "outboxd \/ best pg_recvlogical" | sed -E 's/^([0-9.]+) from process start, ([0-9.]+) from.*/\1, \2/')
  dbz=$(field "$report" "debezium from first" | sed -E 's/^([0-9]+) events.*/\1/')
  dbz_ratio=$(field "$report" "outboxd \/ debezium from first" | sed -E 's/^([0-9.]+) of.*/\1/')
  rss=$(field "$report" "outboxd peak RSS" | sed -E 's/^([0-9]+ MiB).*/\1/')
  alone=$(field "$report" "kafka alone" | sed -n -E 's/^([0-9]+) events.*/\1/p')
  lower=$(field "$report" "outboxd \/ lower ceiling" | sed -E 's/^([0-9.]+) from.*/\1/')
  busy=$(field "$report" "machine busy" | sed -E 's/^([0-9.]+) of.*/\1/')
  echo "| $events | $bytes | $types | ${from_start% *} / $from_first | ${from_start#* } | $ratio | ${alone:--} | ${lower:--} | ${busy:--} | ${dbz:--} | ${dbz_ratio:--} | $rss | $report |"
done
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
