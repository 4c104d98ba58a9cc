#!/usr/bin/env bash
# The README's demo: the seed's story end to end on services this script starts itself.
# Installs what it needs, builds, starts a throwaway PostgreSQL and a real Kafka broker,
# creates the auth service's users and outbox tables, starts outboxd, registers, updates and
# deletes a user (each change and its outbox row in one transaction), prints the events as they
# arrive in Kafka, and stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh" --test
"$root/scripts/build.sh"

demo=$(mktemp -d /tmp/outboxd-demo.XXXXXX)
chmod 755 "$demo"
outboxd_pid=""
cleanup() {
  if [ -n "$outboxd_pid" ] && kill -0 "$outboxd_pid" 2>/dev/null; then kill -KILL "$outboxd_pid" 2>/dev/null || true; fi
  "$root/integration-tests/env/down.sh" "$demo/services" >/dev/null 2>&1 || true
  rm -rf "$demo"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting PostgreSQL (wal_level=logical) and a single-node Kafka broker"
OUTBOXD_IT_SASL=0 "$root/integration-tests/env/up.sh" "$demo/services"
. "$demo/services/env.sh"
sql() { psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=${DB:-auth}" "$@"; }

step "creating the auth service's schema: users, and outbox with Debezium's column names"
DB=postgres sql -c "CREATE DATABASE auth"
sql <<'SQL'
CREATE TABLE users (
  id uuid PRIMARY KEY,
  username text NOT NULL UNIQUE,
  email text NOT NULL
);
CREATE TABLE outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype varchar(255) NOT NULL,
  aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL,
  payload jsonb NOT NULL
);
SQL

step "starting outboxd"
metrics_port=$(. "$root/integration-tests/env/lib.sh"; free_port)
cat >"$demo/outboxd.yaml" <<YAML
source:
  postgres:
    dsn: "host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT dbname=auth user=postgres"
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
metrics:
  listen: "127.0.0.1:$metrics_port"
YAML
"$build/outboxd" --check-config --config "$demo/outboxd.yaml"
"$build/outboxd" --config "$demo/outboxd.yaml" 2>"$demo/outboxd.log" &
outboxd_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break
  kill -0 "$outboxd_pid" 2>/dev/null || { cat "$demo/outboxd.log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$metrics_port/readyz"
sed 's/^/  outboxd: /' "$demo/outboxd.log"

step "the auth service registers, updates and deletes a user (each change and its event in one transaction)"
user_id=$(cat /proc/sys/kernel/random/uuid)
sql -e <<SQL
BEGIN;
INSERT INTO users (id, username, email) VALUES ('$user_id', 'ana', 'ana@example.org');
INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
  VALUES ('user', '$user_id', 'UserRegistered', '{"id": "$user_id", "username": "ana", "email": "ana@example.org"}');
COMMIT;
BEGIN;
UPDATE users SET email = 'ana@playball.example' WHERE id = '$user_id';
INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
  VALUES ('user', '$user_id', 'UserUpdated', '{"id": "$user_id", "email": "ana@playball.example"}');
COMMIT;
BEGIN;
DELETE FROM users WHERE id = '$user_id';
INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
  VALUES ('user', '$user_id', 'UserDeleted', '{"id": "$user_id"}');
COMMIT;
SQL

step "the events as they arrive in Kafka (topic outbox.event.user, key = the user's id), decoded from protobuf"
"$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic outbox.event.user --count 3 --timeout-ms 60000

step "outboxd's metrics"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -E '^outboxd_(events_published_total|confirmed_flush_lsn|replication_lag_bytes|kafka_in_flight_messages|event_latency_seconds_count)'

step "stopping outboxd with SIGTERM"
kill -TERM "$outboxd_pid"
code=0
wait "$outboxd_pid" || code=$?
outboxd_pid=""
tail -n 3 "$demo/outboxd.log" | sed 's/^/  outboxd: /'
echo "outboxd exited with code $code"
sql -At -c "SELECT 'slot ' || slot_name || ' confirmed_flush_lsn ' || confirmed_flush_lsn FROM pg_replication_slots"
step "stopping PostgreSQL and Kafka"
[ "$code" = 0 ]
