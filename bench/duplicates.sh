#!/usr/bin/env bash
# Duplicates per SIGKILL (at-least-once): on one PostgreSQL and one real Kafka broker (up.sh),
# outboxd-load writes a steady stream (BENCH_RATE events/s, one event per transaction) while
# outboxd is SIGKILLed BENCH_KILLS times at random points (every 1.5 to 3.5 s) and restarted at
# once; then the load stops, a last outboxd drains the rest and stops with SIGTERM, and a
# consumer reads the topics from the beginning. Each restart re-sends what the slot had not
# confirmed at the kill, so duplicates = records read - distinct event ids, and per kill is that
# divided by the kills. Prints one line, and fails if any event written is missing.
# BENCH_DELIVERY=exactly-once runs the same kills with sink.kafka.delivery: exactly-once (Kafka
# transactions every BENCH_EOS_INTERVAL_MS, default the relay's 100) and a read_committed consumer
# (outboxd-consume's default in both modes): there the script also fails on any duplicate.
#   bench/duplicates.sh
# Environment: BENCH_RATE (default 1000), BENCH_KILLS (default 10), BENCH_SEED (default 1),
# BENCH_DELIVERY (at-least-once or exactly-once, default at-least-once), BENCH_EOS_INTERVAL_MS,
# BENCH_BUILD_DIR (default build-release), BENCH_NO_BUILD=1 uses BENCH_BUILD_DIR as it is,
# BENCH_KEEP_WORK=1 keeps the work folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
rate=${BENCH_RATE:-1000}
kills=${BENCH_KILLS:-10}
build=${BENCH_BUILD_DIR:-$root/build-release}
RANDOM=${BENCH_SEED:-1}
delivery=${BENCH_DELIVERY:-at-least-once}
case $delivery in
  at-least-once) sink_extra="" ;;
  exactly-once) sink_extra="    delivery: exactly-once
    checkpoint_topic: outboxd.bench.checkpoints${BENCH_EOS_INTERVAL_MS:+
    transaction_interval_ms: $BENCH_EOS_INTERVAL_MS}" ;;
  *) echo "BENCH_DELIVERY is at-least-once or exactly-once, not '$delivery'" >&2; exit 2 ;;
esac

"$root/scripts/install-deps.sh" --test >/dev/null
[ "${BENCH_NO_BUILD:-0}" = 1 ] || BUILD_DIR=$build "$root/scripts/build.sh" --release --no-tests >/dev/null

relay_pid=""
load_pid=""
bench_stop() {
  [ -n "$relay_pid" ] && kill -KILL "$relay_pid" 2>/dev/null || true
  [ -n "$load_pid" ] && kill -KILL "$load_pid" 2>/dev/null || true
}
bench_services duplicates dup

cat >"$work/outboxd.yaml" <<YAML
source:
  postgres:
    dsn: "$dsn"
    slot: dup
    publication: bench
    create_slot: false
    create_publication: false
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
$sink_extra
metrics:
  listen: ""
log:
  level: info
YAML
start_relay() {
  "$build/outboxd" --config "$work/outboxd.yaml" 2>>"$work/outboxd.log" &
  relay_pid=$!
}
streamed() { grep -c "streaming from slot dup" "$work/outboxd.log" 2>/dev/null || true; }

start_relay
for _ in $(seq 1 100); do [ "$(streamed)" -ge 1 ] && break; sleep 0.1; done
# Long enough for every kill, with a few seconds of margin at either end.
duration=$(( kills * 35 / 10 + 6 ))
"$build/outboxd-load" --dsn "$dsn" --rate "$rate" --duration "$duration" --per-txn 1 >"$work/load.out" &
load_pid=$!
sleep 3
for k in $(seq 1 "$kills"); do
  pause=$(( 15 + RANDOM % 21 ))
  sleep "$((pause / 10)).$((pause % 10))"
  before=$(streamed)
  kill -KILL "$relay_pid"
  wait "$relay_pid" 2>/dev/null || true
  start_relay
  # Count a kill only once the relay it killed had streamed again since the previous one.
  for _ in $(seq 1 200); do [ "$(streamed)" -gt "$before" ] && break; sleep 0.05; done
done
wait "$load_pid"
load_pid=""
sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' "$work/load.out")
# Let the last relay catch up, then stop it cleanly (it confirms what Kafka acknowledged).
lag() { psql -X -At "$dsn" -c "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'dup'"; }
for _ in $(seq 1 300); do [ "$(lag)" -le 4096 ] 2>/dev/null && break; sleep 0.2; done
kill -TERM "$relay_pid"
wait "$relay_pid" 2>/dev/null || true
relay_pid=""

"$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic outbox.event.user --topic outbox.event.group \
  --topic outbox.event.membership --format text --idle-ms 5000 --timeout-ms 300000 2>/dev/null \
  | grep -o ' id=[^ ]*' >"$work/ids.txt" || true
read_total=$(wc -l <"$work/ids.txt")
distinct=$(sort -u "$work/ids.txt" | wc -l)
written=$(psql -X -At "$dsn" -c "SELECT count(*) FROM outbox")
dups=$(( read_total - distinct ))
restarts=$(( $(streamed) - 1 ))
echo "date $(date -u +%Y-%m-%dT%H:%MZ), $delivery${BENCH_EOS_INTERVAL_MS:+ (transaction_interval_ms $BENCH_EOS_INTERVAL_MS)}, seed ${BENCH_SEED:-1}, rate $rate/s, $(cat "$work/load.out"), kills $kills (restarts that streamed: $restarts), written $written, read $read_total, distinct $distinct, duplicates $dups, per kill $(echo "scale=1; $dups / $kills" | bc), $("$build/outboxd" --version), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$distinct" -ne "$written" ]; then
  echo "LOST: $((written - distinct)) of $written events written are not in Kafka" >&2
  exit 1
fi
if [ "$delivery" = exactly-once ] && [ "$dups" -ne 0 ]; then
  echo "DUPLICATED: $dups records a read_committed consumer read twice in exactly-once mode" >&2
  exit 1
fi
