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

# bench_fill EVENTS PER_TXN: a backlog of outbox rows (3 aggregate types, 1,000 keys, jsonb
# payloads of about 80 bytes), one transaction per PER_TXN rows.
bench_fill() {
  local events=$1 per_txn=$2
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
}

# bench_debezium: fetches Debezium Server once and sets dbz_java (a JDK it runs on).
bench_debezium() {
  "$bench_root/bench/debezium/fetch.sh" >/dev/null
  dbz_java=$(. "$bench_root/bench/debezium/lib.sh"; debezium_java)
}
