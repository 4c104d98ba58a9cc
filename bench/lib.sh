# Shared set-up of the benchmark scripts; sourced, not run. Each script defines bench_stop()
# to kill the processes it started; bench_cleanup (the EXIT trap) calls it, then stops the
# services and removes the work folder (kept with BENCH_KEEP_WORK=1).

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_services NAME [SLOT...]: a work folder, the EXIT trap, PostgreSQL and Kafka (no TLS, no
# SASL broker), and a database "bench" with Debezium's outbox table, publication "bench" and a
# pgoutput slot per name. Sets work, dsn, and the OUTBOXD_IT_* variables of env.sh.
bench_services() {
  local name=$1 slot
  shift
  work=$(mktemp -d "/tmp/outboxd-$name.XXXXXX")
  chmod 755 "$work"
  trap bench_cleanup EXIT
  OUTBOXD_IT_TLS=0 OUTBOXD_IT_SASL=0 "$bench_root/integration-tests/env/up.sh" "$work/services" >/dev/null
  . "$work/services/env.sh"
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
SQL
  for slot in "$@"; do
    psql -X -q -At -v ON_ERROR_STOP=1 "$dsn" -c "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
  done
}

bench_cleanup() {
  if declare -F bench_stop >/dev/null; then bench_stop; fi
  "$bench_root/integration-tests/env/down.sh" "$work/services" >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}

# bench_fill EVENTS PER_TXN [PAYLOAD_BYTES [TYPES]]: a backlog of outbox rows (1,000 keys, jsonb
# payloads of about 70 bytes), one transaction per PER_TXN rows. With PAYLOAD_BYTES the payload
# gets a "pad" string that brings its text to about that size; TYPES aggregate types (default 3:
# user, group, membership; otherwise type0 .. typeN-1, a topic each).
bench_fill() {
  local events=$1 per_txn=$2 bytes=${3:-0} types=${4:-3} type_expr pad_expr
  if [ "$types" = 3 ]; then
    type_expr="(ARRAY['user','group','membership'])[1 + (t * $per_txn + j) % 3]"
  else
    type_expr="'type' || ((t * $per_txn + j) % $types)"
  fi
  pad_expr=""
  # The payload's text without the pad is about 70 bytes (6-digit seq), and the pad's key and quotes 11 more.
  # The pad is one repeated letter; stored uncompressed (STORAGE EXTERNAL), so the WAL, the
  # walsender and Kafka carry every byte of it.
  if [ "$bytes" -gt 81 ]; then
    pad_expr=", 'pad', repeat('x', $bytes - 81)"
    psql -X -q -v ON_ERROR_STOP=1 "$dsn" -c "ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTERNAL"
  fi
  psql -X -q -v ON_ERROR_STOP=1 "$dsn" <<SQL
DO \$\$
BEGIN
  FOR t IN 0..($events / $per_txn - 1) LOOP
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
    SELECT gen_random_uuid(), $type_expr,
           ((t * $per_txn + j) % 1000)::text, 'UserUpdated',
           jsonb_build_object('seq', t * $per_txn + j, 'name', 'user-' || (t * $per_txn + j), 'email',
                              'user' || (t * $per_txn + j) || '@example.org'$pad_expr)
    FROM generate_series(0, $per_txn - 1) AS j;
    COMMIT;
  END LOOP;
END
\$\$;
SQL
}

# bench_topics PREFIX [TYPES]: the topic names bench_fill's aggregate types route to.
bench_topics() {
  local prefix=$1 types=${2:-3} i
  if [ "$types" = 3 ]; then
    echo "${prefix}user ${prefix}group ${prefix}membership"
  else
    for i in $(seq 0 $((types - 1))); do printf '%stype%d ' "$prefix" "$i"; done
    echo
  fi
}

# bench_debezium: fetches Debezium Server once and sets dbz_java (a JDK it runs on).
bench_debezium() {
  "$bench_root/bench/debezium/fetch.sh" >/dev/null
  dbz_java=$(. "$bench_root/bench/debezium/lib.sh"; debezium_java)
}
