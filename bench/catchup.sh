#!/usr/bin/env bash
# Backlog catch-up benchmark, in one run on the same PostgreSQL and the same real Kafka broker:
#   - fills a backlog of N outbox events (default 200,000) in 5-event transactions, with three
#     pgoutput slots created before the fill so each sees the whole backlog;
#   - pg_recvlogical reads the backlog from slot 1 (the rate a walsender can decode: the ceiling);
#   - outboxd reads it from slot 2 into Kafka, until the slot's confirmed LSN reaches the end;
#   - pg_recvlogical reads it again from slot 3 (a second sample, the machine is shared);
#   - prints events/s for each, outboxd's ratio to pg_recvlogical, outboxd's peak RSS and CPU time,
#     and checks that Kafka holds every event.
#   bench/catchup.sh [EVENTS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
events=${1:-200000}
per_txn=5
build=${BENCH_BUILD_DIR:-$root/build-release}

"$root/scripts/install-deps.sh" --test >/dev/null
BUILD_DIR=$build "$root/scripts/build.sh" --release --no-tests >/dev/null

work=$(mktemp -d /tmp/outboxd-bench.XXXXXX)
chmod 755 "$work"
outboxd_pid=""
cleanup() {
  [ -n "$outboxd_pid" ] && kill -KILL "$outboxd_pid" 2>/dev/null || true
  "$root/integration-tests/env/down.sh" "$work/services" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$root/integration-tests/env/up.sh" "$work/services" >/dev/null
. "$work/services/env.sh"
bindir=$OUTBOXD_IT_PG_BINDIR
dsn="host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=bench"
psql -X -q "$OUTBOXD_IT_PG_DSN" -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 "$dsn" <<'SQL'
CREATE TABLE outbox (
  id uuid PRIMARY KEY,
  aggregatetype varchar(255) NOT NULL,
  aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL,
  payload jsonb NOT NULL
);
CREATE PUBLICATION bench FOR TABLE outbox;
SELECT pg_create_logical_replication_slot('recv1', 'pgoutput');
SELECT pg_create_logical_replication_slot('outboxd', 'pgoutput');
SELECT pg_create_logical_replication_slot('recv2', 'pgoutput');
SQL

now() { date +%s.%N; }
fill_start=$(now)
psql -X -q -v ON_ERROR_STOP=1 "$dsn" <<SQL
DO \$\$
BEGIN
  FOR t IN 0..($events / $per_txn - 1) LOOP
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
    SELECT gen_random_uuid(), (ARRAY['user','group','membership'])[1 + (t * $per_txn + j) % 3],
           ((t * $per_txn + j) % 1000)::text, 'UserUpdated',
           jsonb_build_object('seq', t * $per_txn + j, 'name', 'user-' || (t * $per_txn + j), 'email',
                              'user' || (t * $per_txn + j) || '@example.org')
    FROM generate_series(0, $per_txn - 1) AS j;
    COMMIT;
  END LOOP;
END
\$\$;
SQL
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
    properties: {${BENCH_KAFKA_PROPERTIES:-}}
metrics:
  listen: "127.0.0.1:$metrics_port"
log:
  level: warn
YAML
end_num=$(( (16#${end_lsn%/*} << 32) | 16#${end_lsn#*/} ))
t0=$(now)
"$build/outboxd" --config "$work/outboxd.yaml" 2>"$work/outboxd.log" &
outboxd_pid=$!
first_s=""
while true; do
  m=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null || true)
  published=$(echo "$m" | awk '/^outboxd_events_published_total /{print $2}')
  confirmed=$(echo "$m" | awk '/^outboxd_confirmed_flush_lsn /{printf "%.0f", $2}')
  if [ -z "$first_s" ] && [ -n "$published" ] && [ "${published%.*}" -gt 0 ] 2>/dev/null; then
    first_s=$(echo "$(now) - $t0" | bc)
  fi
  if [ -n "$confirmed" ] && [ "$confirmed" -ge "$end_num" ] 2>/dev/null; then break; fi
  kill -0 "$outboxd_pid" 2>/dev/null || { cat "$work/outboxd.log"; exit 1; }
  sleep 0.05
done
outboxd_s=$(echo "$(now) - $t0" | bc)
rss_kb=$(awk '/^VmHWM/{print $2}' "/proc/$outboxd_pid/status")
read -r utime stime < <(awk '{print $14, $15}' "/proc/$outboxd_pid/stat")
cpu_s=$(echo "($utime + $stime) / $(getconf CLK_TCK)" | bc -l)
kill -TERM "$outboxd_pid"
wait "$outboxd_pid" || true
outboxd_pid=""

recv2_s=$(recvlogical recv2)

in_kafka=0
for topic in outbox.event.user outbox.event.group outbox.event.membership; do
  n=$("$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$topic" --format latency \
        --idle-ms 3000 --timeout-ms 120000 | sed -E 's/.*received=([0-9]+).*/\1/')
  in_kafka=$((in_kafka + n))
done

rate() { echo "$events / $1" | bc; }
recv_rate1=$(rate "$recv1_s"); recv_rate2=$(rate "$recv2_s"); outboxd_rate=$(rate "$outboxd_s")
recv_best=$(( recv_rate1 > recv_rate2 ? recv_rate1 : recv_rate2 ))
cat <<REPORT
date:                 $(date -u +%Y-%m-%dT%H:%MZ)
machine:              $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)
versions:             outboxd $("$build/outboxd" --version | cut -d' ' -f2), PostgreSQL $(psql -X -At "$dsn" -c 'SHOW server_version'), Kafka $(. "$root/integration-tests/env/lib.sh"; kafka_version), librdkafka $(pkg-config --modversion rdkafka)
backlog:              $events events in $per_txn-event transactions, $(echo "$wal_bytes / 1048576" | bc) MiB of WAL, filled in ${fill_s}s
pg_recvlogical:       ${recv1_s}s (${recv_rate1} events/s), again ${recv2_s}s (${recv_rate2} events/s)
outboxd:              ${outboxd_s}s (${outboxd_rate} events/s) from process start to the last LSN confirmed
outboxd / best pg_recvlogical: $(echo "scale=2; $outboxd_rate / $recv_best" | bc)
first event acked:    ${first_s}s after process start (metrics polled every 50 ms)
outboxd peak RSS:     $((rss_kb / 1024)) MiB (VmHWM)
outboxd CPU:          $(printf '%.2f' "$cpu_s")s user+sys, $(echo "scale=2; $cpu_s * 100000 / $events" | bc) s per 100k events
events in Kafka:      $in_kafka of $events
REPORT
[ "$in_kafka" -ge "$events" ]
