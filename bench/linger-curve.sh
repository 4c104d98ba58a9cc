#!/usr/bin/env bash
# The curves that choose outboxd's default linger.ms (issue 14): one bench/steady.sh run per
# linger.ms value (fresh services each, outboxd only, its warm-up run first), and one table of
# what each measured at each rate: commit-to-consumer p50 and p99, CPU seconds per 100,000 events
# and wake-ups per event. With BENCH_DEBEZIUM_CPU (Debezium's CPU seconds per 100,000 events at
# the first rate, from a steady.sh run with Debezium) it also prints outboxd's share of it.
# With BENCH_CATCHUP=1 it runs bench/catchup.sh instead (a backlog of BENCH_EVENTS events, default
# 200,000; no typed, exactly-once or Debezium step) and prints, per value, outboxd's events/s from
# its first event, its CPU and the broker's CPU over the read: what the linger does to a backlog.
#   bench/linger-curve.sh [OUT_DIR]
# Environment: BENCH_LINGERS (default "0 1 2 5 10 20"), BENCH_RATES (default "1000"),
# BENCH_DURATION (default 60) and the other variables of steady.sh or catchup.sh, which pass through.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d /tmp/outboxd-linger-curve.XXXXXX)}
mkdir -p "$out"
lingers=${BENCH_LINGERS:-"0 1 2 5 10 20"}
export BENCH_RATES=${BENCH_RATES:-1000}
dbz_cpu=${BENCH_DEBEZIUM_CPU:-}

if [ "${BENCH_CATCHUP:-0}" = 1 ]; then
  field() { sed -n "s/^$2: *//p" "$1" | head -n 1; }
  echo "| linger.ms | outboxd events/s from first event | outboxd / best pg_recvlogical (from first) | outboxd CPU | broker CPU while outboxd read | machine busy | report |"
  echo "|---|---|---|---|---|---|---|"
  for linger in $lingers; do
    report="$out/catchup-linger-$linger.txt"
    if ! BENCH_SKIP_DEBEZIUM=1 BENCH_SKIP_TYPED=1 BENCH_SKIP_EOS=1 BENCH_KAFKA_PROPERTIES="\"linger.ms\": \"$linger\"" \
         "$root/bench/catchup.sh" "${BENCH_EVENTS:-200000}" >"$report" 2>"$report.err"; then
      echo "| $linger | FAILED: see $report.err | | | | | |"
      continue
    fi
    echo "| $linger | $(field "$report" "outboxd from first" | sed -E 's/^([0-9]+) events.*/\1/') |" \
         "$(field "$report" "outboxd \/ best pg_recvlogical" | sed -E 's/.*, ([0-9.]+) from the first event/\1/') |" \
         "$(field "$report" "outboxd CPU" | sed -E 's/^([0-9.]+s).*/\1/') |" \
         "$(field "$report" "broker CPU" | sed -E 's/^([0-9.]+s).*/\1/') |" \
         "$(field "$report" "machine busy" | sed -E 's/^([0-9.]+) of.*/\1/') | $report |"
  done
  echo
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  exit 0
fi
echo "| linger.ms | target events/s | achieved events/s | commit-to-consumer p50 / p99 / max ms | CPU s per 100k events | wake-ups per event (all threads / main) | CPU / Debezium's | report |"
echo "|---|---|---|---|---|---|---|---|"
for linger in $lingers; do
  report="$out/steady-linger-$linger.txt"
  if ! BENCH_SKIP_DEBEZIUM=1 BENCH_SKIP_FLOOR=1 BENCH_PLOT=none BENCH_KAFKA_PROPERTIES="\"linger.ms\": \"$linger\"" \
       "$root/bench/steady.sh" >"$report" 2>"$report.err"; then
    echo "| $linger | FAILED: see $report.err | | | | | | |"
    continue
  fi
  # The outboxd rows of steady.sh's table: | outboxd | rate | achieved | events | p50 | p99 | max | commit p50 / p99 / max | RSS | CPU | wake-ups | first |
  grep -E '^\| outboxd \|' "$report" | while IFS='|' read -r _ _ rate achieved _ _ _ _ commit _ cpu wake _; do
    cpu=${cpu% s }
    share=-
    [ -z "$dbz_cpu" ] || share=$(echo "scale=2; ${cpu// /} / $dbz_cpu" | bc | sed -E 's/^\./0./')
    echo "| $linger |$rate|$achieved|$commit| ${cpu// /} |$wake| $share | $report |"
  done
done
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
