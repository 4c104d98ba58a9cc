#!/usr/bin/env bash
# One-big-transaction benchmark, for memory: on one PostgreSQL and one real Kafka broker (up.sh),
# commits one transaction of N outbox events (default 1,000,000; jsonb payloads of about 70
# bytes), with a pgoutput slot per relay created before it, then for outboxd and (unless
# BENCH_SKIP_DEBEZIUM=1) Debezium Server, one after the other:
#   - starts a consumer on the relay's topics, then the relay;
#   - waits until the consumer has read all N events;
#   - reports the time from process start to the last event read, the relay's peak RSS (VmHWM)
#     and CPU time (user+sys) per 100,000 events.
# PostgreSQL decodes the transaction only after its commit, spilling it to disk past
# logical_decoding_work_mem (64 MiB): the relay receives it as one long stream of inserts between
# one Begin and one Commit, and can confirm nothing to the slot until the whole is acknowledged.
# Unless BENCH_SKIP_EOS=1, outboxd then reads it again from a slot of its own in exactly-once mode
# (topics eos.outbox.event.*, read back with read_committed): the whole PostgreSQL transaction is
# one Kafka transaction, which must commit within the producer's transaction.timeout.ms (the relay
# stops at 90% of it, saying so; BENCH_KAFKA_PROPERTIES may raise it, e.g.
# '"transaction.timeout.ms": "300000"', within the broker's transaction.max.timeout.ms).
#   bench/bigtxn.sh [EVENTS]
# BENCH_DEBEZIUM_TIMEOUT (seconds, default 900) bounds Debezium's run; BENCH_NO_BUILD=1 uses BENCH_BUILD_DIR as it is; BENCH_KEEP_WORK=1 keeps
# the work folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
events=${1:-1000000}
build=${BENCH_BUILD_DIR:-$root/build-release}
skip_dbz=${BENCH_SKIP_DEBEZIUM:-0}
skip_eos=${BENCH_SKIP_EOS:-0}
dbz_timeout=${BENCH_DEBEZIUM_TIMEOUT:-900}

"$root/scripts/install-deps.sh" --test >/dev/null
[ "${BENCH_NO_BUILD:-0}" = 1 ] || BUILD_DIR=$build "$root/scripts/build.sh" --release --no-tests >/dev/null
[ "$skip_dbz" = 1 ] || bench_debezium

bench_stop() {
  [ -n "$relay_pid" ] && kill -KILL "$relay_pid" 2>/dev/null || true
  [ -n "$consumer_pid" ] && kill -KILL "$consumer_pid" 2>/dev/null || true
}
relay_pid=""
consumer_pid=""
slots=(outboxd)
[ "$skip_eos" = 1 ] || slots+=(eos)
bench_services bigtxn "${slots[@]}"
[ "$skip_dbz" = 1 ] || psql -X -q -At "$dsn" -c "SELECT pg_create_logical_replication_slot('debezium', 'pgoutput')" >/dev/null

now() { date +%s.%N; }
lz() { sed -E 's/^(-?)\./\10./'; }
t=$(now)
psql -X -q -v ON_ERROR_STOP=1 "$dsn" -c "
INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
SELECT gen_random_uuid(), (ARRAY['user','group','membership'])[1 + s % 3], (s % 1000)::text, 'UserUpdated',
       jsonb_build_object('seq', s, 'name', 'user-' || s, 'email', 'user' || s || '@example.org')
FROM generate_series(0, $events - 1) AS s"
fill_s=$(echo "$(now) - $t" | bc | lz)
wal_mib=$(psql -X -At "$dsn" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) / 1048576 FROM pg_replication_slots WHERE slot_name='outboxd'" | cut -d. -f1)

cpu_of() {
  local u s
  read -r u s < <(awk '{print $14, $15}' "/proc/$1/stat")
  echo "($u + $s) / $(getconf CLK_TCK)" | bc -l
}

# run RELAY TOPIC_PREFIX: prints "seconds peak_rss_kb cpu_s received"; RELAY is outboxd,
# outboxd-eos (exactly-once, slot eos) or debezium. A relay that exits first ends the run.
run() {
  local relay=$1 prefix=$2 dir="$work/$1" t0 s rss cpu
  mkdir -p "$dir"
  "$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "${prefix}user" --topic "${prefix}group" \
    --topic "${prefix}membership" --from end --format count --count "$events" --timeout-ms $((dbz_timeout * 1000)) \
    >"$dir/count.out" 2>"$dir/count.err" &
  consumer_pid=$!
  for _ in $(seq 1 600); do grep -q started "$dir/count.err" 2>/dev/null && break; sleep 0.05; done
  t0=$(now)
  if [ "$relay" != debezium ]; then
    local metrics_port slot=outboxd sink_extra=""
    [ "$relay" = outboxd ] || { slot=eos; sink_extra="    delivery: exactly-once
    checkpoint_topic: outboxd.bench.checkpoints"; }
    metrics_port=$(. "$root/integration-tests/env/lib.sh"; free_port)
    cat >"$dir/outboxd.yaml" <<YAML
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
  listen: "127.0.0.1:$metrics_port"
log:
  level: warn
YAML
    "$build/outboxd" --config "$dir/outboxd.yaml" 2>"$dir/outboxd.log" &
    relay_pid=$!
  else
    relay_pid=$(DBZ_WORK_DIR="$dir/debezium" DBZ_PG_HOST=127.0.0.1 DBZ_PG_PORT="$OUTBOXD_IT_PG_PORT" DBZ_PG_DB=bench \
                DBZ_PG_USER=postgres DBZ_SLOT=debezium DBZ_PUBLICATION=bench DBZ_TABLE=public.outbox \
                DBZ_KAFKA_BROKERS="$OUTBOXD_IT_KAFKA_BROKERS" DBZ_TOPIC_PREFIX=debezium.outbox.event. \
                DEBEZIUM_JAVA_HOME="${dbz_java%/bin/java}" "$root/bench/debezium/run.sh")
  fi
  while kill -0 "$consumer_pid" 2>/dev/null; do
    kill -0 "$relay_pid" 2>/dev/null || { sleep 3; kill -TERM "$consumer_pid" 2>/dev/null || true; break; }
    sleep 0.2
  done
  if ! wait "$consumer_pid"; then
    consumer_pid=""
    kill -0 "$relay_pid" 2>/dev/null || echo "$relay: the relay exited before the consumer had every event" >&2
    echo "$relay: the consumer counted $(cat "$dir/count.out" 2>/dev/null | grep . || echo "nothing it printed (stopped)") of $events events" >&2
    tail -n 30 "$dir/outboxd.log" "$dir/debezium/debezium.log" >&2 2>/dev/null || true
    exit 1
  fi
  consumer_pid=""
  s=$(echo "$(now) - $t0" | bc | lz)
  rss=$(awk '/^VmHWM/{print $2}' "/proc/$relay_pid/status")
  cpu=$(cpu_of "$relay_pid")
  kill -TERM "$relay_pid"
  for _ in $(seq 1 100); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
  echo "$s $rss $cpu $(sed -E 's/received=([0-9]+).*/\1/' "$dir/count.out")"
}

read -r o_s o_rss o_cpu o_n < <(run outboxd outbox.event.)
[ -n "${o_n:-}" ] || exit 1
cat <<REPORT
date:            $(date -u +%Y-%m-%dT%H:%MZ)
machine:         $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)
versions:        outboxd $("$build/outboxd" --version | head -n 1 | cut -d' ' -f2), PostgreSQL $(psql -X -At "$dsn" -c 'SHOW server_version'), Kafka $(. "$root/integration-tests/env/lib.sh"; kafka_version), librdkafka $("$build/outboxd" --version | sed -n 's/^librdkafka //p'), protobuf $("$build/outboxd" --version | sed -n 's/^protobuf //p')
command:         ${BENCH_KAFKA_PROPERTIES:+BENCH_KAFKA_PROPERTIES='$BENCH_KAFKA_PROPERTIES' }bench/bigtxn.sh $events${BENCH_SKIP_DEBEZIUM:+ (BENCH_SKIP_DEBEZIUM=$skip_dbz)}
transaction:     $events events in one transaction, $wal_mib MiB of WAL, committed in ${fill_s}s
outboxd:         ${o_s}s from process start to the last event read back from Kafka ($(echo "$events / $o_s" | bc) events/s), $o_n events
outboxd peak RSS: $((o_rss / 1024)) MiB (VmHWM)
outboxd CPU:     $(printf '%.2f' "$o_cpu")s user+sys, $(echo "scale=2; $o_cpu * 100000 / $events" | bc | lz) s per 100k events
REPORT
if [ "$skip_eos" != 1 ]; then
  read -r e_s e_rss e_cpu e_n < <(run outboxd-eos eos.outbox.event.)
  [ -n "${e_n:-}" ] || { tail -n 5 "$work/outboxd-eos/outboxd.log" >&2; exit 1; }
  cat <<REPORT
exactly-once:    ${e_s}s from process start to the last event read back (read_committed) from Kafka ($(echo "$events / $e_s" | bc) events/s), $e_n events; one Kafka transaction
exactly-once peak RSS: $((e_rss / 1024)) MiB (VmHWM)
exactly-once CPU: $(printf '%.2f' "$e_cpu")s user+sys, $(echo "scale=2; $e_cpu * 100000 / $events" | bc | lz) s per 100k events ($(echo "scale=2; $e_cpu / $o_cpu" | bc | lz) of at-least-once's)
REPORT
fi
if [ "$skip_dbz" != 1 ]; then
  read -r d_s d_rss d_cpu d_n < <(run debezium debezium.outbox.event.)
  cat <<REPORT
debezium:        ${d_s}s from process start to the last event read back from Kafka ($(echo "$events / $d_s" | bc) events/s), $d_n events
debezium peak RSS: $((d_rss / 1024)) MiB (VmHWM of the Java process, JVM default heap)
debezium CPU:    $(printf '%.2f' "$d_cpu")s user+sys, $(echo "scale=2; $d_cpu * 100000 / $events" | bc | lz) s per 100k events
outboxd / debezium: $(echo "scale=3; $o_rss / $d_rss" | bc | lz) of the peak RSS, $(echo "scale=3; $o_cpu / $d_cpu" | bc | lz) of the CPU time
REPORT
fi
