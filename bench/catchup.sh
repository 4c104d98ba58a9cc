#!/usr/bin/env bash
# Backlog catch-up benchmark, in one run on the same PostgreSQL and the same real Kafka broker:
#   - fills a backlog of N outbox events (default 200,000) in 5-event transactions, with three
#     pgoutput slots created before the fill so each sees the whole backlog;
#   - pg_recvlogical reads the backlog from slot 1 (the rate a walsender can decode: the ceiling);
#   - outboxd reads it from slot 2 into Kafka, until the slot's confirmed LSN reaches the end;
#   - outboxd reads it again from another slot with typed payloads (each jsonb payload converted to
#     a protobuf message from bench/proto/bench.proto; skipped with BENCH_SKIP_TYPED=1), into
#     topics typed.outbox.event.<aggregatetype>;
#   - pg_recvlogical reads it again from slot 3 (a second sample, the machine is shared);
#   - outboxd reads it again in exactly-once mode (sink.kafka.delivery: exactly-once, the default
#     transaction_interval_ms unless BENCH_EOS_INTERVAL_MS) into topics eos.outbox.event.<type>,
#     counted back with a read_committed consumer (skipped with BENCH_SKIP_EOS=1);
#   - Debezium Server (PostgreSQL connector + Outbox Event Router, bench/debezium/run.sh) reads it
#     from slot 4 into topics debezium.outbox.event.<aggregatetype>, until its offset file records
#     the backlog's last event as processed (skipped with BENCH_SKIP_DEBEZIUM=1);
#   - Kafka alone: outboxd-kafka-floor, a bare librdkafka producer with outboxd's producer
#     properties, sends as many records of about outboxd's record size and headers over as many
#     topics, as fast as the broker takes them, into topics kafka.alone.<aggregatetype> (skipped
#     with BENCH_SKIP_KAFKA_ALONE=1): the other ceiling, since outboxd can go no faster than either;
#   - prints events/s for each, outboxd's ratio to pg_recvlogical and to Debezium, peak RSS and CPU
#     time of outboxd and Debezium, and checks that Kafka holds every event of both.
#   - rates are given from process start and from the first event in Kafka, so that start-up
#     (the JVM's, for Debezium) shows separately.
#   bench/catchup.sh [EVENTS]
# BENCH_PAYLOAD_BYTES makes each payload about that many bytes of JSON (default: about 70);
# BENCH_AGGREGATE_TYPES spreads the events over that many aggregate types, a topic each, created on
# first use (default 3). bench/catchup-matrix.sh runs the sizes and backlogs of issue 14.
# BENCH_DEBEZIUM_TIMEOUT (seconds, default 600) bounds the Debezium step; BENCH_KEEP_WORK=1 keeps
# the work folder (logs, configuration) instead of deleting it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
events=${1:-200000}
per_txn=5
build=${BENCH_BUILD_DIR:-$root/build-release}
skip_dbz=${BENCH_SKIP_DEBEZIUM:-0}
skip_typed=${BENCH_SKIP_TYPED:-0}
skip_eos=${BENCH_SKIP_EOS:-0}
skip_kafka_alone=${BENCH_SKIP_KAFKA_ALONE:-0}
dbz_timeout=${BENCH_DEBEZIUM_TIMEOUT:-600}
payload_bytes=${BENCH_PAYLOAD_BYTES:-0}
types=${BENCH_AGGREGATE_TYPES:-3}

"$root/scripts/install-deps.sh" --test >/dev/null
BUILD_DIR=$build "$root/scripts/build.sh" --release --no-tests >/dev/null
[ "$skip_dbz" = 1 ] || bench_debezium

bench_stop() {
  [ -n "$outboxd_pid" ] && kill -KILL "$outboxd_pid" 2>/dev/null || true
  [ -n "$dbz_pid" ] && kill -KILL "$dbz_pid" 2>/dev/null || true
}
outboxd_pid=""
dbz_pid=""
slots=(recv1 outboxd recv2)
[ "$skip_typed" = 1 ] || slots+=(typed)
[ "$skip_eos" = 1 ] || slots+=(eos)
[ "$skip_dbz" = 1 ] || slots+=(debezium)
bench_services bench "${slots[@]}"
bindir=$OUTBOXD_IT_PG_BINDIR

now() { date +%s.%N; }
# broker_ticks: the Kafka broker's user+system CPU so far, in clock ticks (the broker runs for
# the whole script, so each step reads it before and after).
broker_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$work/services/kafka/pid")/stat"; }
ticks_per_s=$(getconf CLK_TCK)
# machine_ticks: "busy idle" clock ticks of all cores so far (/proc/stat; iowait counts as idle),
# to tell whether a step had the machine's CPU to itself or used all of it.
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; }
busy_share() {  # busy_share "BUSY0 IDLE0": the share of all cores busy since then
  local b0=${1% *} i0=${1#* } b1 i1
  read -r b1 i1 < <(machine_ticks)
  echo "scale=2; ($b1 - $b0) / ($b1 - $b0 + $i1 - $i0)" | bc | sed -E 's/^\./0./'
}
fill_start=$(now)
bench_fill "$events" "$per_txn" "$payload_bytes" "$types"
payload_avg=$(psql -X -At "$dsn" -c "SELECT round(avg(octet_length(payload::text))) FROM outbox")
end_lsn=$(psql -X -At "$dsn" -c "SELECT pg_current_wal_lsn()")
fill_s=$(echo "$(now) - $fill_start" | bc)
wal_bytes=$(psql -X -At "$dsn" -c "SELECT pg_wal_lsn_diff('$end_lsn', confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name='outboxd'")

recvlogical() {
  local slot=$1 t0
  t0=$(now)
  "$bindir/pg_recvlogical" -d "$dsn" --slot "$slot" --start -o proto_version=1 -o publication_names=bench \
    -E "$end_lsn" -F 0 -f /dev/null
  echo "$(now) - $t0" | bc
}

recv1_s=$(recvlogical recv1)

end_num=$(( (16#${end_lsn%/*} << 32) | 16#${end_lsn#*/} ))
# run_outboxd SLOT TOPIC_PREFIX [YAML [SINK_YAML]]: outboxd from process start until SLOT's
# confirmed LSN reaches the backlog's end; sets run_s, run_first_s, run_rss_kb, run_cpu_s. YAML is
# added at the top level, SINK_YAML under sink.kafka.
run_outboxd() {
  local slot=$1 prefix=$2 extra=${3:-} sink_extra=${4:-} port t0 m published confirmed utime stime pid
  port=$(. "$root/integration-tests/env/lib.sh"; free_port)
  cat >"$work/$slot.yaml" <<YAML
source:
  postgres:
    dsn: "$dsn"
    slot: $slot
    publication: bench
    create_slot: false
    create_publication: false
routing:
  topic: "$prefix{aggregatetype}"
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
    properties: {${BENCH_KAFKA_PROPERTIES:-}}
$sink_extra
metrics:
  listen: "127.0.0.1:$port"
log:
  level: warn
$extra
YAML
  local broker0 machine0
  broker0=$(broker_ticks)
  machine0=$(machine_ticks)
  t0=$(now)
  "$build/outboxd" --config "$work/$slot.yaml" 2>"$work/$slot.log" &
  pid=$!
  outboxd_pid=$pid
  run_first_s=""
  while true; do
    m=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
    published=$(echo "$m" | awk '/^outboxd_events_published_total /{print $2}')
    confirmed=$(echo "$m" | awk '/^outboxd_confirmed_flush_lsn /{printf "%.0f", $2}')
    if [ -z "$run_first_s" ] && [ -n "$published" ] && [ "${published%.*}" -gt 0 ] 2>/dev/null; then
      run_first_s=$(echo "$(now) - $t0" | bc)
    fi
    if [ -n "$confirmed" ] && [ "$confirmed" -ge "$end_num" ] 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/$slot.log"; exit 1; }
    sleep 0.05
  done
  run_s=$(echo "$(now) - $t0" | bc)
  run_broker_cpu_s=$(echo "($(broker_ticks) - $broker0) / $ticks_per_s" | bc -l)
  run_busy=$(busy_share "$machine0")
  run_rss_kb=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
  read -r utime stime < <(awk '{print $14, $15}' "/proc/$pid/stat")
  run_cpu_s=$(echo "($utime + $stime) / $(getconf CLK_TCK)" | bc -l)
  # The walsender serving the slot (a process of its own, started for this connection): its CPU
  # over the run tells whether decoding or the relay and Kafka set the pace.
  local wal_pid
  wal_pid=$(psql -X -At "$dsn" -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$slot'")
  run_wal_cpu_s=""
  if [ -n "$wal_pid" ] && read -r utime stime < <(awk '{print $14, $15}' "/proc/$wal_pid/stat" 2>/dev/null); then
    run_wal_cpu_s=$(echo "($utime + $stime) / $(getconf CLK_TCK)" | bc -l)
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  outboxd_pid=""
}

run_outboxd outboxd outbox.event.
outboxd_s=$run_s; first_s=$run_first_s; rss_kb=$run_rss_kb; cpu_s=$run_cpu_s; wal_cpu_s=$run_wal_cpu_s
broker_cpu_s=$run_broker_cpu_s; busy=$run_busy

# The same backlog with typed payloads: every event's jsonb payload converted to the binary
# outboxd.bench.v1.UserUpdated (bench/proto/bench.proto) with protobuf's JSON mapping.
if [ "$skip_typed" != 1 ]; then
  protoc --include_imports --descriptor_set_out="$work/bench.pb" -I "$root/bench/proto" "$root/bench/proto/bench.proto"
  run_outboxd typed typed.outbox.event. "payload:
  protobuf:
    descriptor_set: \"$work/bench.pb\"
    types:
      UserUpdated: outboxd.bench.v1.UserUpdated"
  typed_s=$run_s; typed_rss_kb=$run_rss_kb; typed_cpu_s=$run_cpu_s
fi

recv2_s=$(recvlogical recv2)

# The same backlog in exactly-once mode: Kafka transactions over whole PostgreSQL transactions,
# each ending with its checkpoint record; the slot is confirmed after each Kafka commit.
if [ "$skip_eos" != 1 ]; then
  run_outboxd eos eos.outbox.event. "" "    delivery: exactly-once
    checkpoint_topic: outboxd.bench.checkpoints${BENCH_EOS_INTERVAL_MS:+
    transaction_interval_ms: $BENCH_EOS_INTERVAL_MS}"
  eos_s=$run_s; eos_first_s=$run_first_s; eos_rss_kb=$run_rss_kb; eos_cpu_s=$run_cpu_s
fi

# Debezium step. Debezium Server's Kafka sink waits for every record of a batch to be acknowledged
# before it marks the batch processed, and with offset.flush.interval.ms=0 it then writes its
# offset file; the offset's lsn_proc is the LSN of the last event processed. The step ends when
# that offset reaches the LSN of the backlog's last outbox INSERT record (found with pg_waldump
# in the last 8 MiB of the backlog's WAL): every event acknowledged by Kafka and recorded.
# (Debezium's slot is not the end mark: Debezium confirms to it the commit LSN of the last
# transaction it saw end, i.e. short of the last one, until a later event or heartbeat arrives.)
dbz_fail() {
  echo "DEBEZIUM DID NOT DELIVER: $*" >&2
  if [ -f "$work/debezium/debezium.log" ]; then
    echo "--- errors and last lines of $work/debezium/debezium.log:" >&2
    grep -E 'ERROR|Exception' "$work/debezium/debezium.log" | tail -n 20 >&2 || true
    tail -n 30 "$work/debezium/debezium.log" >&2
  fi
  exit 1
}
lsn_num() { echo $(( (16#${1%/*} << 32) | 16#${1#*/} )); }
if [ "$skip_dbz" != 1 ]; then
  rel=$(psql -X -At "$dsn" -c "SELECT d.oid || '/' || pg_relation_filenode('outbox') FROM pg_database d WHERE d.datname = current_database()")
  scan_from=$(psql -X -At "$dsn" -c "SELECT greatest(confirmed_flush_lsn, '$end_lsn'::pg_lsn - 8388608) FROM pg_replication_slots WHERE slot_name = 'debezium'")
  last_event_lsn=$("$bindir/pg_waldump" -p "$OUTBOXD_IT_PGDATA/pg_wal" -s "$scan_from" -e "$end_lsn" -r Heap 2>/dev/null \
                     | grep -E "desc: INSERT.* rel [0-9]+/$rel " | tail -n 1 \
                     | sed -E 's/.* lsn: ([0-9A-F]+)\/0*([0-9A-F]+),.*/\1\/\2/' || true)
  [ -n "$last_event_lsn" ] || dbz_fail "could not find the backlog's last INSERT with pg_waldump between $scan_from and $end_lsn"
  last_event_num=$(lsn_num "$last_event_lsn")
  dbz_t0=$(now)
  dbz_pid=$(DBZ_WORK_DIR="$work/debezium" DBZ_PG_HOST=127.0.0.1 DBZ_PG_PORT="$OUTBOXD_IT_PG_PORT" DBZ_PG_DB=bench \
            DBZ_PG_USER=postgres DBZ_SLOT=debezium DBZ_PUBLICATION=bench DBZ_TABLE=public.outbox \
            DBZ_KAFKA_BROKERS="$OUTBOXD_IT_KAFKA_BROKERS" DBZ_TOPIC_PREFIX=debezium.outbox.event. \
            DEBEZIUM_JAVA_HOME="${dbz_java%/bin/java}" "$root/bench/debezium/run.sh")
  while true; do
    proc=$(grep -aoE '"lsn_proc":[0-9]+' "$work/debezium/offsets.dat" 2>/dev/null | tail -n 1 | cut -d: -f2 || true)
    if [ -n "$proc" ] && [ "$proc" -ge "$last_event_num" ]; then break; fi
    if ! kill -0 "$dbz_pid" 2>/dev/null; then
      dbz_pid=""
      dbz_fail "the Debezium Server process exited before its offset reached $last_event_lsn"
    fi
    if [ "$(echo "$(now) - $dbz_t0 > $dbz_timeout" | bc)" = 1 ]; then
      dbz_fail "Debezium's offset at lsn_proc=${proc:-none} after ${dbz_timeout}s, short of $last_event_lsn ($last_event_num) (BENCH_DEBEZIUM_TIMEOUT)"
    fi
    sleep 0.05
  done
  dbz_s=$(echo "$(now) - $dbz_t0" | bc)
  dbz_rss_kb=$(awk '/^VmHWM/{print $2}' "/proc/$dbz_pid/status")
  read -r utime stime < <(awk '{print $14, $15}' "/proc/$dbz_pid/stat")
  dbz_cpu_s=$(echo "($utime + $stime) / $(getconf CLK_TCK)" | bc -l)
  dbz_threads=$(awk '/^Threads/{print $2}' "/proc/$dbz_pid/status")
  sleep 1  # lets Debezium's flush thread pass its last commit LSN to the slot, for the report
  dbz_slot_lsn=$(psql -X -At "$dsn" -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'debezium'")
  kill -TERM "$dbz_pid"
  for _ in $(seq 1 100); do kill -0 "$dbz_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$dbz_pid" 2>/dev/null || true
  dbz_pid=""
fi

# Kafka alone: the same number of records, of about outboxd's record size (the payload and about
# 100 bytes of envelope: id, aggregate type and id, event type, LSN, timestamps) with outboxd's
# three headers, keyed over 1,000 ids like the backlog and spread over as many topics, produced as
# fast as the broker acknowledges them, with outboxd's producer properties (BENCH_KAFKA_PROPERTIES
# does not apply).
if [ "$skip_kafka_alone" != 1 ]; then
  # shellcheck disable=SC2046
  alone_topics=$(for t in $(bench_topics kafka.alone. "$types"); do echo "--topic $t"; done)
  # A first record to each topic creates them, as outboxd's first events did, outside the timing.
  # shellcheck disable=SC2086
  "$build/outboxd-kafka-floor" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" $alone_topics --count "$types" --size 100 >/dev/null
  broker0=$(broker_ticks)
  machine0=$(machine_ticks)
  alone_t0=$(now)
  # shellcheck disable=SC2086
  alone_out=$("$build/outboxd-kafka-floor" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" $alone_topics --count "$events" \
                --size $((payload_avg + 100)) --outbox-headers)
  alone_s=$(echo "$(now) - $alone_t0" | bc)
  alone_broker_cpu_s=$(echo "($(broker_ticks) - $broker0) / $ticks_per_s" | bc -l)
  alone_busy=$(busy_share "$machine0")
  alone_rate=$(echo "$alone_out" | sed -E 's/.*acked_rate=([0-9]+).*/\1/')
fi

# count_in_kafka PREFIX [outboxd-consume options]: the records in all the backlog's topics of
# PREFIX, read by one consumer (one 3-second silence in all, not one per topic).
count_in_kafka() {
  local prefix=$1
  shift
  # shellcheck disable=SC2046
  "$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" \
      $(for t in $(bench_topics "$prefix" "$types"); do echo "--topic $t"; done) \
      --format count --idle-ms 3000 --timeout-ms 120000 "$@" | sed -E 's/.*received=([0-9]+).*/\1/'
}
in_kafka=$(count_in_kafka outbox.event.)

typed_in_kafka=0
if [ "$skip_typed" != 1 ]; then
  typed_in_kafka=$(count_in_kafka typed.outbox.event.)
  typed_sample=$("$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$(bench_topics typed.outbox.event. "$types" | cut -d' ' -f1)" \
                   --count 1 --timeout-ms 30000 | sed -n 's/.*payload (\(.*\)): \(.*\)/\1, \2/p') || true
fi

eos_in_kafka=0
if [ "$skip_eos" != 1 ]; then
  eos_in_kafka=$(count_in_kafka eos.outbox.event. --isolation read_committed)
fi

dbz_in_kafka=0
if [ "$skip_dbz" != 1 ]; then
  # shellcheck disable=SC2046
  read -r dbz_in_kafka dbz_first_ms dbz_last_ms < <("$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" \
      $(for t in $(bench_topics debezium.outbox.event. "$types"); do echo "--topic $t"; done) \
      --format count --idle-ms 3000 --timeout-ms 120000 \
    | sed -E 's/received=([0-9]+) first_ts_ms=(-?[0-9]+) last_ts_ms=(-?[0-9]+)/\1 \2 \3/') || true
  dbz_in_kafka=${dbz_in_kafka:-0}
fi

rate() { echo "$events / $1" | bc; }
mbps() { echo "scale=1; $events * $payload_avg / $1 / 1000000" | bc | lz; }
lz() { sed -E 's/^(-?)\./\10./'; }
recv_rate1=$(rate "$recv1_s"); recv_rate2=$(rate "$recv2_s"); outboxd_rate=$(rate "$outboxd_s")
recv_best=$(( recv_rate1 > recv_rate2 ? recv_rate1 : recv_rate2 ))
cat <<REPORT
date:                 $(date -u +%Y-%m-%dT%H:%MZ)
machine:              $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)
versions:             outboxd $("$build/outboxd" --version | head -n 1 | cut -d' ' -f2), PostgreSQL $(psql -X -At "$dsn" -c 'SHOW server_version'), Kafka $(. "$root/integration-tests/env/lib.sh"; kafka_version), librdkafka $("$build/outboxd" --version | sed -n 's/^librdkafka //p'), protobuf $("$build/outboxd" --version | sed -n 's/^protobuf //p')
backlog:              $events events in $per_txn-event transactions, payloads of $payload_avg bytes on average, $types aggregate types, $(echo "$wal_bytes / 1048576" | bc) MiB of WAL, filled in ${fill_s}s
pg_recvlogical:       ${recv1_s}s (${recv_rate1} events/s), again ${recv2_s}s (${recv_rate2} events/s)
outboxd:              ${outboxd_s}s (${outboxd_rate} events/s, $(mbps "$outboxd_s") MB/s of payload) from process start to the last LSN confirmed
outboxd from first:   $(rate "$(echo "$outboxd_s - $first_s" | bc)") events/s from the first event acknowledged to the last LSN confirmed
outboxd / best pg_recvlogical: $(echo "scale=2; $outboxd_rate / $recv_best" | bc | lz) from process start, $(echo "scale=2; $(rate "$(echo "$outboxd_s - $first_s" | bc)") / $recv_best" | bc | lz) from the first event
first event acked:    ${first_s}s after process start (metrics polled every 50 ms)
outboxd peak RSS:     $((rss_kb / 1024)) MiB (VmHWM)
outboxd CPU:          $(printf '%.2f' "$cpu_s")s user+sys, $(echo "scale=2; $cpu_s * 100000 / $events" | bc) s per 100k events
broker CPU:           $(printf '%.2f' "$broker_cpu_s")s user+sys while outboxd read, $(echo "scale=2; $broker_cpu_s / $outboxd_s" | bc | lz) of one core
walsender CPU:        $(if [ -n "$wal_cpu_s" ]; then echo "$(printf '%.2f' "$wal_cpu_s")s user+sys while outboxd read, $(echo "scale=2; $wal_cpu_s / $outboxd_s" | bc | lz) of one core"; else echo "not read (no active walsender at the end)"; fi)
machine busy:         $busy of all $(nproc) cores while outboxd read (/proc/stat)
events in Kafka:      $in_kafka of $events
REPORT
if [ "$skip_kafka_alone" = 1 ]; then
  echo "kafka alone:          skipped (BENCH_SKIP_KAFKA_ALONE=1)"
else
  outboxd_first_rate=$(rate "$(echo "$outboxd_s - $first_s" | bc)")
  lower=$(( recv_best < alone_rate ? recv_best : alone_rate ))
  cat <<REPORT
kafka alone:          ${alone_rate} events/s from the first acknowledgement to the last ($(echo "$alone_s" | lz)s in all), $events records of $((payload_avg + 100)) bytes over $types topics, outboxd's producer properties
kafka alone broker CPU: $(printf '%.2f' "$alone_broker_cpu_s")s user+sys, $(echo "scale=2; $alone_broker_cpu_s / $alone_s" | bc | lz) of one core; machine busy $alone_busy of all cores
outboxd / kafka alone: $(echo "scale=2; $outboxd_first_rate / $alone_rate" | bc | lz) from the first event
outboxd / lower ceiling: $(echo "scale=2; $outboxd_first_rate / $lower" | bc | lz) from the first event (the lower of best pg_recvlogical and Kafka alone: $lower events/s)
REPORT
fi
if [ "$skip_typed" = 1 ]; then
  echo "typed payloads:       skipped (BENCH_SKIP_TYPED=1)"
else
  typed_rate=$(rate "$typed_s")
  cat <<REPORT
typed payloads:       ${typed_s}s ($typed_rate events/s) from process start to the last LSN confirmed, $(echo "scale=2; $typed_rate / $outboxd_rate" | bc | lz) of the untyped run's events/s
typed peak RSS, CPU:  $((typed_rss_kb / 1024)) MiB, $(printf '%.2f' "$typed_cpu_s")s user+sys ($(echo "scale=2; $typed_cpu_s / $cpu_s" | bc | lz) of the untyped run's)
typed in Kafka:       $typed_in_kafka of $events; a record's payload: ${typed_sample:-none read}
REPORT
fi
if [ "$skip_eos" = 1 ]; then
  echo "exactly-once:         skipped (BENCH_SKIP_EOS=1)"
else
  eos_rate=$(rate "$eos_s")
  cat <<REPORT
exactly-once:         ${eos_s}s ($eos_rate events/s) from process start to the last LSN confirmed, $(echo "scale=2; $eos_rate / $outboxd_rate" | bc | lz) of the at-least-once run's events/s; transaction_interval_ms ${BENCH_EOS_INTERVAL_MS:-default}
exactly-once from first: $(rate "$(echo "$eos_s - $eos_first_s" | bc)") events/s from the first event acknowledged to the last LSN confirmed
exactly-once RSS, CPU: $((eos_rss_kb / 1024)) MiB, $(printf '%.2f' "$eos_cpu_s")s user+sys, $(echo "scale=2; $eos_cpu_s * 100000 / $events" | bc | lz) s per 100k events ($(echo "scale=2; $eos_cpu_s / $cpu_s" | bc | lz) of the at-least-once run's)
exactly-once in Kafka: $eos_in_kafka of $events (read_committed)
REPORT
fi
if [ "$skip_dbz" = 1 ]; then
  echo "debezium:             skipped (BENCH_SKIP_DEBEZIUM=1)"
else
  dbz_rate=$(rate "$dbz_s")
  cat <<REPORT
debezium versions:    Debezium Server $(. "$root/bench/debezium/lib.sh"; debezium_version) on $("$dbz_java" -version 2>&1 | head -n 1), JVM default heap (max $("$dbz_java" -XX:+PrintFlagsFinal -version 2>/dev/null | awk '$2 == "MaxHeapSize" {printf "%.0f", $4 / 1048576}') MiB)
debezium:             $(echo "$dbz_s" | lz)s (${dbz_rate} events/s) from process start to its offset holding the last event ($last_event_lsn); slot then at $dbz_slot_lsn
outboxd / debezium:   $(echo "scale=2; $outboxd_rate / $dbz_rate" | bc | lz) of the events/s, $(echo "scale=3; $rss_kb / $dbz_rss_kb" | bc | lz) of the peak RSS, $(echo "scale=3; $cpu_s / $dbz_cpu_s" | bc | lz) of the CPU time
debezium first event: $(echo "scale=3; $dbz_first_ms / 1000 - $dbz_t0" | bc | lz)s after process start (its producer's record timestamp), last event $(echo "scale=3; $dbz_last_ms / 1000 - $dbz_t0" | bc | lz)s
debezium from first:  $(rate "$(echo "scale=3; ($dbz_last_ms - $dbz_first_ms) / 1000" | bc | lz)") events/s from its first record to its last (record timestamps)
outboxd / debezium from first: $(echo "scale=2; $(rate "$(echo "$outboxd_s - $first_s" | bc)") / $(rate "$(echo "scale=3; ($dbz_last_ms - $dbz_first_ms) / 1000" | bc | lz)")" | bc | lz) of the events/s, both start-ups excluded
debezium peak RSS:    $((dbz_rss_kb / 1024)) MiB (VmHWM of the Java process, $dbz_threads threads)
debezium CPU:         $(printf '%.2f' "$dbz_cpu_s")s user+sys, $(echo "scale=2; $dbz_cpu_s * 100000 / $events" | bc | lz) s per 100k events
debezium in Kafka:    $dbz_in_kafka of $events
REPORT
  [ "$dbz_in_kafka" -ge "$events" ] || dbz_fail "Kafka holds $dbz_in_kafka of $events events on debezium.outbox.event.*"
fi
[ "$in_kafka" -ge "$events" ]
[ "$skip_typed" = 1 ] || [ "$typed_in_kafka" -ge "$events" ]
[ "$skip_eos" = 1 ] || [ "$eos_in_kafka" -eq "$events" ]
