#!/usr/bin/env bash
# Steady-rate latency benchmark, on one PostgreSQL and one real Kafka broker (up.sh): for each
# relay (outboxd; Debezium Server through bench/debezium/run.sh unless BENCH_SKIP_DEBEZIUM=1) and
# each rate, in this order:
#   - creates a fresh pgoutput slot and inserts 3 warm-up events (one per aggregate type);
#   - starts a consumer from the end of the relay's topics, then the relay, and times from the
#     relay's process start until the consumer holds the 3 warm-up events ("first event");
#   - starts the latency consumer(s) from the end of the topics, then outboxd-load at the rate for
#     the duration, in small transactions (rate/1000 events each, at most 10, so that the
#     database sees at most about 1,000 commits/s: on 2 shared cores PostgreSQL did not keep up
#     with 2,000 commits/s beside Kafka, the relay and the consumers; BENCH_PER_TXN overrides);
#   - latency = consumer receipt wall clock minus the payload's "ts" (the load generator's clock
#     just before its INSERT), for both relays; for outboxd also minus the event's
#     source.commit_time (the commit timestamp PostgreSQL records);
#   - relay peak RSS (VmHWM) and CPU seconds (user+sys) per 100,000 events, CPU counted from
#     just before the load starts until the consumer saw the last event and stayed idle 5 s.
# Before the relays, at each rate, the floor (unless BENCH_SKIP_FLOOR=1), on the same services:
#   - PostgreSQL alone: outboxd-pg-floor, a bare logical replication client (libpq, no decoder, no
#     Kafka) on a fresh slot, timing each row from its payload "ts" to its receipt while
#     outboxd-load inserts at the rate, in the same transactions as for the relays;
#   - Kafka alone: outboxd-kafka-floor, a bare librdkafka producer with outboxd's default producer
#     properties, sending BENCH_FLOOR_SIZE-byte records (default 256, about an outboxd.v1.Event of
#     outboxd-load's rows) at the rate: produce-to-acknowledgement from its delivery reports, and
#     produce-to-consumer from the same consumer the relays' runs use;
#   - the floor's p99 is the sum of the two p99s, printed beside outboxd's p99;
#   - with BENCH_FLOOR_TOGETHER=1 the two halves run at the same time rather than one after the
#     other: each then shares the two cores with the other, as the walsender, the relay, the
#     broker and the consumer do in a relay's run.
# With BENCH_EOS_INTERVALS (e.g. "25 100 250"), outboxd also runs in exactly-once mode after its
# at-least-once run, once per transaction_interval_ms listed (relay "outboxd-eos-<ms>"); the
# consumers read with isolation.level=read_committed (outboxd-consume's default) throughout.
# Prints a markdown table and writes a PNG plot of p50/p99 latency against rate (gnuplot,
# installed with apt when missing).
#   bench/steady.sh
# Environment: BENCH_RATES (default "1000 10000"), BENCH_DURATION (seconds, default 60),
# BENCH_EOS_INTERVALS (default none), BENCH_SKIP_DEBEZIUM=1, BENCH_SKIP_FLOOR=1, BENCH_FLOOR_SIZE (bytes, default 256), BENCH_KAFKA_PROPERTIES (extra outboxd producer properties in YAML flow
# syntax, e.g. '"linger.ms": "0"'), BENCH_PLOT (default bench/latency.png; "none" for no plot),
# BENCH_BUILD_DIR (default build-release), BENCH_NO_BUILD=1 uses BENCH_BUILD_DIR as it is; BENCH_KEEP_WORK=1 keeps the work folder;
# BENCH_ATTACH, a command given outboxd's pid as its last argument for the load (a profiler: "strace -c -f -p");
# BENCH_REF_BUILD, the build folder of another outboxd (an earlier commit's) run as "outboxd-ref"
# right after outboxd at each rate, on the same services: a before/after in one run (the same
# folder as BENCH_BUILD_DIR makes it an A/A run, which shows what the order alone does);
# BENCH_REF_KAFKA_PROPERTIES, outboxd-ref's producer properties instead of BENCH_KAFKA_PROPERTIES
# (with the same build folder: a before/after of one setting in one run);
# BENCH_WARMUP, seconds of an unrecorded outboxd run at each rate before its floor (default 20, 0
# for none).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
rates=${BENCH_RATES:-"1000 10000"}
duration=${BENCH_DURATION:-60}
build=${BENCH_BUILD_DIR:-$root/build-release}
skip_dbz=${BENCH_SKIP_DEBEZIUM:-0}
skip_floor=${BENCH_SKIP_FLOOR:-0}
floor_size=${BENCH_FLOOR_SIZE:-256}
warmup_s=${BENCH_WARMUP:-20}
floor_together=${BENCH_FLOOR_TOGETHER:-0}
plot=${BENCH_PLOT:-$root/bench/latency.png}
relays="outboxd"
ref_build=${BENCH_REF_BUILD:-}
[ -z "$ref_build" ] || relays="$relays outboxd-ref"
for ms in ${BENCH_EOS_INTERVALS:-}; do relays="$relays outboxd-eos-$ms"; done
[ "$skip_dbz" = 1 ] || relays="$relays debezium"

"$root/scripts/install-deps.sh" --test >/dev/null
[ "${BENCH_NO_BUILD:-0}" = 1 ] || BUILD_DIR=$build "$root/scripts/build.sh" --release --no-tests >/dev/null
if [ "$plot" != none ] && ! command -v gnuplot >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
fi
[ "$skip_dbz" = 1 ] || bench_debezium

bench_stop() {
  [ -n "$relay_pid" ] && kill -KILL "$relay_pid" 2>/dev/null || true
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
relay_pid=""
bg_pids=()
bench_services steady

now() { date +%s.%N; }
lz() { sed -E 's/^(-?)\./\10./'; }
cpu_of() {  # user+sys seconds of a process
  local u s
  read -r u s < <(awk '{print $14, $15}' "/proc/$1/stat")
  echo "($u + $s) / $(getconf CLK_TCK)" | bc -l
}
wakeups_of() {  # wakeups_of PID: voluntary context switches (sleeps that ended in a wake-up): "all main"
  local all=0 t n
  for t in /proc/"$1"/task/*; do
    n=$(awk '/^voluntary_ctxt_switches/{print $2}' "$t/status" 2>/dev/null || echo 0)
    all=$((all + ${n:-0}))
  done
  echo "$all $(awk '/^voluntary_ctxt_switches/{print $2}' "/proc/$1/status")"
}
wait_line() {  # wait_line FILE TEXT SECONDS
  for _ in $(seq 1 $(($3 * 20))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  return 1
}
topics_of() {
  local prefix=outbox.event.
  [ "$1" = debezium ] && prefix=debezium.outbox.event.
  echo "--topic ${prefix}user --topic ${prefix}group --topic ${prefix}membership"
}

results="$work/results.tsv"
: >"$results"
run_one() {
  local relay=$1 rate=$2 dir="$work/$1-$2" slot="${1//-/_}_$2" per_txn t0 first_s cpu0 cpu1 rss_kb sink_extra=""
  mkdir -p "$dir"
  per_txn=${BENCH_PER_TXN:-$(( (rate + 999) / 1000 ))}; [ "$per_txn" -gt 10 ] && per_txn=10
  psql -X -q -At -v ON_ERROR_STOP=1 "$dsn" -c "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 "$dsn" -c "INSERT INTO outbox SELECT gen_random_uuid(), t, 'warmup', 'Warmup', '{\"warmup\": true}' FROM unnest(ARRAY['user','group','membership']) AS t"
  # shellcheck disable=SC2046
  "$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" $(topics_of "$relay") --from end --format count \
    --count 3 --timeout-ms 300000 >"$dir/warm.out" 2>"$dir/warm.err" &
  local warm_pid=$!
  bg_pids+=("$warm_pid")
  wait_line "$dir/warm.err" "outboxd-consume: started" 60
  sleep 1
  t0=$(now)
  if [ "${relay%%-*}" = outboxd ]; then
    # outboxd-eos-<ms>: exactly-once, Kafka transactions committed every <ms> ms.
    local bin="$build/outboxd"
    local props=${BENCH_KAFKA_PROPERTIES:-}
    if [ "$relay" = outboxd-ref ]; then
      bin="$ref_build/outboxd"
      props=${BENCH_REF_KAFKA_PROPERTIES-$props}
    fi
    [[ "$relay" != outboxd-eos-* ]] || sink_extra="    delivery: exactly-once
    checkpoint_topic: outboxd.bench.checkpoints
    transaction_interval_ms: ${relay##*-}"
    local metrics_port
    metrics_port=$(. "$root/integration-tests/env/lib.sh"; free_port)
    cat >"$dir/outboxd.yaml" <<YAML
source:
  postgres:
    dsn: "$dsn"
    slot: $slot
    publication: bench
    create_slot: false
    create_publication: false
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
    properties: {$props}
$sink_extra
metrics:
  listen: "127.0.0.1:$metrics_port"
log:
  level: warn
YAML
    "$bin" --config "$dir/outboxd.yaml" 2>"$dir/outboxd.log" &
    relay_pid=$!
  else
    relay_pid=$(DBZ_WORK_DIR="$dir/debezium" DBZ_PG_HOST=127.0.0.1 DBZ_PG_PORT="$OUTBOXD_IT_PG_PORT" DBZ_PG_DB=bench \
                DBZ_PG_USER=postgres DBZ_SLOT="$slot" DBZ_PUBLICATION=bench DBZ_TABLE=public.outbox \
                DBZ_KAFKA_BROKERS="$OUTBOXD_IT_KAFKA_BROKERS" DBZ_TOPIC_PREFIX=debezium.outbox.event. \
                DEBEZIUM_JAVA_HOME="${dbz_java%/bin/java}" "$root/bench/debezium/run.sh")
  fi
  if ! wait "$warm_pid"; then
    echo "$relay did not deliver the warm-up events" >&2
    cat "$dir/outboxd.log" "$dir/debezium/debezium.log" 2>/dev/null | tail -n 30 >&2
    exit 1
  fi
  first_s=$(echo "$(now) - $t0" | bc | lz)

  local consumers=(payload-ts)
  [ "$relay" = debezium ] || consumers+=(commit-time)
  local c_pids=() c
  for c in "${consumers[@]}"; do
    # shellcheck disable=SC2046
    "$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" $(topics_of "$relay") --from end \
      --format latency --latency-from "$c" --idle-ms 5000 --timeout-ms $(( (duration + 300) * 1000 )) \
      >"$dir/lat-$c.out" 2>"$dir/lat-$c.err" &
    c_pids+=($!)
    bg_pids+=($!)
    wait_line "$dir/lat-$c.err" "outboxd-consume: assigned" 60
  done
  sleep 1
  cpu0=$(cpu_of "$relay_pid")
  local wk0 wk1 wake
  wk0=$(wakeups_of "$relay_pid")
  local attach_pid=""
  if [ -n "${BENCH_ATTACH:-}" ] && [ "${relay%%-*}" = outboxd ]; then
    # A profiler attached to the relay for the load (e.g. "strace -c -f -p" or "perf record -g -p"),
    # stopped with SIGINT once the consumers have seen the last event; its output is kept in the
    # work folder and its last lines printed.
    # shellcheck disable=SC2086
    ( cd "$dir" && exec $BENCH_ATTACH "$relay_pid" ) >"$dir/attach.out" 2>&1 &
    attach_pid=$!
  fi
  "$build/outboxd-load" --dsn "$dsn" --rate "$rate" --duration "$duration" --per-txn "$per_txn" >"$dir/load.out"
  for p in "${c_pids[@]}"; do wait "$p"; done
  if [ -n "$attach_pid" ]; then
    kill -INT "$attach_pid" 2>/dev/null || true
    wait "$attach_pid" 2>/dev/null || true
    echo "$relay $rate/s, $BENCH_ATTACH: $dir/attach.out" >&2
    tail -n 40 "$dir/attach.out" >&2
  fi
  cpu1=$(cpu_of "$relay_pid")
  wk1=$(wakeups_of "$relay_pid")
  rss_kb=$(awk '/^VmHWM/{print $2}' "/proc/$relay_pid/status")
  local acked=""
  if [ "$relay" != debezium ]; then
    # outboxd's own commit-to-acknowledgement histogram (warm-up events included): the share
    # acknowledged by Kafka within 2, 5 and 10 ms, to tell the relay's part from the consumer's.
    acked=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" | awk '
      /^outboxd_event_latency_seconds_bucket\{le="0.002"\}/ {a=$2} /^outboxd_event_latency_seconds_bucket\{le="0.005"\}/ {b=$2}
      /^outboxd_event_latency_seconds_bucket\{le="0.01"\}/ {c=$2} /^outboxd_event_latency_seconds_count/ {n=$2}
      END { if (n > 0) printf "%.1f%%/%.1f%%/%.1f%%", 100*a/n, 100*b/n, 100*c/n }')
  fi
  # CPU seconds by thread name (the relay's own loop, librdkafka's threads, the JVM's), whole run.
  local threads
  threads=$(for t in /proc/"$relay_pid"/task/*; do
              awk -v tck="$(getconf CLK_TCK)" '{ sub(/^[0-9]+ \(/, ""); n = $0; sub(/\).*/, "", n); gsub(/ /, "_", n); sub(/.*\) /, "");
                                                 printf "%s %.2f\n", n, ($12 + $13) / tck }' "$t/stat"
            done | awk '{ cpu[$1] += $2 } END { for (n in cpu) if (cpu[n] >= 0.05) printf "%s=%.2fs ", n, cpu[n] }')
  kill -TERM "$relay_pid"
  for _ in $(seq 1 100); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
  psql -X -q -At "$dsn" -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null

  local sent achieved lat commit="- - -"
  sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' "$dir/load.out")
  # Wake-ups per event: every thread's, and the main thread's (outboxd's event loop).
  read -r a0 m0 <<<"$wk0"
  read -r a1 m1 <<<"$wk1"
  wake="$(echo "scale=2; ($a1 - $a0) / $sent" | bc | lz)/$(echo "scale=2; ($m1 - $m0) / $sent" | bc | lz)"
  achieved=$(sed -E 's/.*rate=([0-9]+).*/\1/' "$dir/load.out")
  lat=$(sed -E 's/received=([0-9]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+) max_ms=([0-9.]+)/\1 \2 \3 \4/' "$dir/lat-payload-ts.out")
  if [ "$relay" != debezium ]; then
    commit=$(sed -E 's/received=[0-9]+ p50_ms=([0-9.-]+) p99_ms=([0-9.-]+) max_ms=([0-9.-]+)/\1 \2 \3/' "$dir/lat-commit-time.out")
  fi
  echo "$relay: rate $rate, $(cat "$dir/load.out"), payload-ts $(cat "$dir/lat-payload-ts.out")$(
    [ "$relay" != debezium ] && echo ", commit-time $(cat "$dir/lat-commit-time.out")"), first event ${first_s}s, wake-ups per event (all threads/main thread) ${wake}, ${acked:+acked by Kafka within 2/5/10 ms: $acked, }threads ${threads}, VmHWM $((rss_kb / 1024)) MiB, CPU $(printf '%.2f' "$(echo "$cpu1 - $cpu0" | bc -l)")s" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$relay" "$rate" "$achieved" "$sent" "$lat" "$commit" \
    "$rss_kb" "$(echo "scale=3; ($cpu1 - $cpu0) * 100000 / $sent" | bc | lz)" "$first_s" "$per_txn" "$duration" "$wake" \
    | tr ' ' '\t' >>"$results"
}

floors="$work/floors.tsv"
: >"$floors"
# The floor at one rate: PostgreSQL alone, then Kafka alone (see the top of this file); with
# BENCH_FLOOR_TOGETHER=1 both at the same time.
run_floor() {
  local rate=$1 dir="$work/floor-$1" slot="floor_$1" topic="floor.kafka.$1" per_txn src ack e2e
  mkdir -p "$dir"
  per_txn=${BENCH_PER_TXN:-$(( (rate + 999) / 1000 ))}; [ "$per_txn" -gt 10 ] && per_txn=10
  psql -X -q -At -v ON_ERROR_STOP=1 "$dsn" -c "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
  "$build/outboxd-pg-floor" --dsn "$dsn" --slot "$slot" --publication bench --idle-ms 5000 \
    --timeout-ms $(( (duration + 300) * 1000 )) >"$dir/pg.out" 2>"$dir/pg.err" &
  local pg_pid=$!
  bg_pids+=("$pg_pid")
  wait_line "$dir/pg.err" "outboxd-pg-floor: started" 60
  if [ "$floor_together" != 1 ]; then
    "$build/outboxd-load" --dsn "$dsn" --rate "$rate" --duration "$duration" --per-txn "$per_txn" >"$dir/pg-load.out"
    wait "$pg_pid" || { echo "outboxd-pg-floor failed" >&2; cat "$dir/pg.err" >&2; exit 1; }
    psql -X -q -At "$dsn" -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  fi
  # Kafka: a few records first create the topic and the producer's idempotence state, as the
  # relays' warm-up events do.
  "$build/outboxd-kafka-floor" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$topic" --rate 10 --duration 0.3 \
    --size "$floor_size" >"$dir/kafka-warm.out" 2>"$dir/kafka-warm.err"
  "$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$topic" --from end --format latency \
    --latency-from payload-ts --idle-ms 5000 --timeout-ms $(( (duration + 300) * 1000 )) >"$dir/kafka-e2e.out" \
    2>"$dir/kafka-e2e.err" &
  local c_pid=$!
  bg_pids+=("$c_pid")
  wait_line "$dir/kafka-e2e.err" "outboxd-consume: assigned" 60
  sleep 1
  local k_pid
  "$build/outboxd-kafka-floor" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$topic" --rate "$rate" \
    --duration "$duration" --size "$floor_size" >"$dir/kafka.out" 2>"$dir/kafka.err" &
  k_pid=$!
  bg_pids+=("$k_pid")
  if [ "$floor_together" = 1 ]; then
    # Both halves at once: the load and the bare replication client beside the bare producer
    # and its consumer, so that the floor shares the two cores the way a relay's run does.
    "$build/outboxd-load" --dsn "$dsn" --rate "$rate" --duration "$duration" --per-txn "$per_txn" >"$dir/pg-load.out"
    wait "$pg_pid" || { echo "outboxd-pg-floor failed" >&2; cat "$dir/pg.err" >&2; exit 1; }
    psql -X -q -At "$dsn" -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  fi
  wait "$k_pid" || { echo "outboxd-kafka-floor failed" >&2; cat "$dir/kafka.err" >&2; exit 1; }
  wait "$c_pid"
  src=$(sed -E 's/received=[0-9]+ p50_ms=([0-9.-]+) p99_ms=([0-9.-]+) max_ms=([0-9.-]+)/\1 \2 \3/' "$dir/pg.out")
  ack=$(sed -E 's/.*ack_p50_ms=([0-9.-]+) ack_p99_ms=([0-9.-]+) ack_max_ms=([0-9.-]+)/\1 \2 \3/' "$dir/kafka.out")
  e2e=$(sed -E 's/received=[0-9]+ p50_ms=([0-9.-]+) p99_ms=([0-9.-]+) max_ms=([0-9.-]+)/\1 \2 \3/' "$dir/kafka-e2e.out")
  echo "floor: rate $rate, PostgreSQL alone $(cat "$dir/pg.out") ($(cat "$dir/pg-load.out")), Kafka alone $(cat "$dir/kafka.out"), produce-to-consumer $(cat "$dir/kafka-e2e.out")" >&2
  printf '%s\t%s\t%s\t%s\n' "$rate" "$src" "$ack" "$e2e" | tr ' ' '\t' >>"$floors"
}

# A warm-up at each rate before anything is measured there: outboxd (this build) for
# BENCH_WARMUP seconds, its figures dropped. Without it the first run at a rate had the worse tail
# (2026-12-04: the same binary run twice, 9.9 ms then 6.1 ms p99 at 1,000/s).
warm_up() {
  local rate=$1 saved=$duration
  duration=$warmup_s
  run_one outboxd-warmup "$rate" 2>"$work/warmup-$rate.err"
  duration=$saved
  sed -i '/^outboxd-warmup	/d' "$results"
}

for rate in $rates; do
  [ "$warmup_s" = 0 ] || warm_up "$rate"
  [ "$skip_floor" = 1 ] || run_floor "$rate"
  for relay in $relays; do
    run_one "$relay" "$rate"
  done
done

# Columns of results.tsv: relay rate achieved sent received p50 p99 max commit_p50 commit_p99
# commit_max rss_kb cpu_per_100k first_s per_txn duration wakeups(all/main)
echo "date:     $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:  $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: outboxd $("$build/outboxd" --version | head -n 1 | cut -d' ' -f2), PostgreSQL $(psql -X -At "$dsn" -c 'SHOW server_version'), Kafka $(. "$root/integration-tests/env/lib.sh"; kafka_version), librdkafka $("$build/outboxd" --version | sed -n 's/^librdkafka //p'), protobuf $("$build/outboxd" --version | sed -n 's/^protobuf //p')$(
  [ "$skip_dbz" = 1 ] || echo ", Debezium Server $(. "$root/bench/debezium/lib.sh"; debezium_version) on $("$dbz_java" -version 2>&1 | head -n 1 | cut -d'"' -f2)")"
echo "command:  BENCH_RATES=\"$rates\" BENCH_DURATION=$duration BENCH_WARMUP=$warmup_s$( [ "$floor_together" != 1 ] || echo " BENCH_FLOOR_TOGETHER=1")${ref_build:+ BENCH_REF_BUILD=$ref_build}${BENCH_EOS_INTERVALS:+ BENCH_EOS_INTERVALS=\"$BENCH_EOS_INTERVALS\"}${BENCH_KAFKA_PROPERTIES:+ BENCH_KAFKA_PROPERTIES='$BENCH_KAFKA_PROPERTIES'}${BENCH_REF_KAFKA_PROPERTIES+ BENCH_REF_KAFKA_PROPERTIES='$BENCH_REF_KAFKA_PROPERTIES'} bench/steady.sh"
echo
echo "| relay | target events/s | achieved events/s | events (received/sent) | p50 ms | p99 ms | max ms | commit-to-consumer p50 / p99 / max ms | peak RSS | CPU s per 100k events | wake-ups per event (all threads / main) | first event |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
while IFS=$'\t' read -r relay rate achieved sent received p50 p99 max cp50 cp99 cmax rss cpu first per_txn dur wake; do
  commit="-"
  [ "$cp50" = - ] || commit="$cp50 / $cp99 / $cmax"
  printf '| %s | %s | %s | %s/%s | %s | %s | %s | %s | %s MiB | %s s | %s | %s s |\n' "$relay" "$rate" "$achieved" "$received" \
    "$sent" "$p50" "$p99" "$max" "$commit" "$((rss / 1024))" "$cpu" "${wake/\// \/ }" "$first"
done <"$results"

if [ "$skip_floor" != 1 ]; then
  # Columns of floors.tsv: rate pg_p50 pg_p99 pg_max ack_p50 ack_p99 ack_max e2e_p50 e2e_p99 e2e_max
  echo
  echo "| target events/s | PostgreSQL alone p50 / p99 ms | Kafka ack p50 / p99 ms | Kafka produce-to-consumer p50 / p99 ms | floor p99 ms (PostgreSQL + Kafka to consumer) | outboxd p50 / p99 ms | outboxd p99 minus floor p99 |"
  echo "|---|---|---|---|---|---|---|"
  while IFS=$'\t' read -r rate pp50 pp99 _ ap50 ap99 _ ep50 ep99 _; do
    read -r op50 op99 < <(awk -F'\t' -v r="$rate" '$1 == "outboxd" && $2 == r {print $6, $7}' "$results")
    floor99=$(echo "$pp99 + $ep99" | bc | lz)
    printf '| %s | %s / %s | %s / %s | %s / %s | %s | %s / %s | %s |\n' "$rate" "$pp50" "$pp99" "$ap50" "$ap99" "$ep50" "$ep99" \
      "$floor99" "${op50:--}" "${op99:--}" "$( [ -n "${op99:-}" ] && echo "$op99 - $floor99" | bc | lz || echo -)"
  done <"$floors"
fi

if [ "$plot" != none ]; then
  [ "$skip_floor" = 1 ] || awk -F'\t' '{print $1, $2 + $8, $3 + $9}' "$floors" >"$work/floor.dat"
  for relay in $relays; do awk -F'\t' -v r="$relay" '$1 == r {print $3, $6, $7}' "$results" >"$work/$relay.dat"; done
  {
    echo "set terminal pngcairo size 800,500"
    echo "set output '$plot'"
    echo "set title 'Latency from the INSERT to a consumer, against rate ($duration s per point, $(date -u +%Y-%m-%d))'"
    echo "set xlabel 'events/s (achieved)'; set ylabel 'latency (ms)'"
    echo "set logscale xy; set grid; set key top left"
    echo "set xrange [500:20000]"
    plots=()
    for relay in $relays; do
      plots+=("'$work/$relay.dat' using 1:2 with linespoints title '$relay p50'" "'$work/$relay.dat' using 1:3 with linespoints title '$relay p99'")
    done
    [ "$skip_floor" = 1 ] || plots+=("'$work/floor.dat' using 1:3 with linespoints dashtype 2 title 'floor p99 (PostgreSQL + Kafka alone)'")
    (IFS=,; echo "plot ${plots[*]}")
  } >"$work/plot.gp"
  gnuplot "$work/plot.gp" 2>/dev/null || { sed -i 's/pngcairo/png/' "$work/plot.gp"; gnuplot "$work/plot.gp"; }
  echo
  echo "plot:     $plot"
fi
