#!/usr/bin/env bash
# The README's demo: the seed's story (examples/playball) end to end on services this script
# starts itself. Installs what it needs, builds, starts a throwaway PostgreSQL and a real Kafka
# broker, creates the auth service's database (users, outbox) and group management's (its view
# of users, groups, inbox), starts group management's consumer, shows the seed's failure (a
# group for a user registered while outboxd is not running: "unknown user"), starts outboxd,
# shows the same request succeed once the event arrived, updates, registers and deletes users
# (each change and its outbox row in one transaction), prints the events as they arrive in Kafka
# and as group management applied them, prints group management's view of users next to the
# auth database's, and stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh" --test
"$root/scripts/build.sh"

demo=$(mktemp -d /tmp/outboxd-demo.XXXXXX)
chmod 755 "$demo"
outboxd_pid=""
gm_pid=""
cleanup() {
  if [ -n "$gm_pid" ] && kill -0 "$gm_pid" 2>/dev/null; then kill -KILL "$gm_pid" 2>/dev/null || true; fi
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

. "$root/examples/playball/lib.sh"
step "creating the auth service's database (users, outbox with Debezium's column names, register/update/delete functions) and group management's (its view of users, groups, inbox)"
pb_create auth group_management outboxd
echo "  examples/playball/auth/schema.sql -> database auth; examples/playball/group-management/schema.sql -> database group_management"
gm() { "$build/playball-group-management" "$@"; }
gm_db=$(pb_dsn group_management)

step "group management starts consuming outbox.event.user (consumer group group-management)"
"$build/playball-group-management" consume --db "$gm_db" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --verbose >"$demo/gm.out" 2>"$demo/gm.log" &
gm_pid=$!

step "the seed's failure: ana registers, but outboxd is not running yet, so group management does not know her"
ana=$(pb_query auth "SELECT register_user('ana', 'ana@example.org', 'Ana')")
echo "  auth: SELECT register_user('ana', 'ana@example.org', 'Ana') -> $ana"
gm create-group --db "$gm_db" --owner "$ana" --name "Sunday league" 2>&1 | sed 's/^/  /' || true

step "starting outboxd"
metrics_port=$(. "$root/integration-tests/env/lib.sh"; free_port)
pb_relay_config "$demo/outboxd.yaml" auth outboxd outbox.event "$metrics_port"
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

step "once ana's UserRegistered event has arrived, the same request succeeds"
for _ in $(seq 1 300); do
  gm create-group --db "$gm_db" --owner "$ana" --name "Sunday league" 2>/dev/null | sed 's/^/  /' && break
  sleep 0.1
done

step "the auth service updates ana, registers bob and deletes him (each change and its event in one transaction)"
sql -At -e <<SQL
SELECT update_user('$ana', NULL, 'ana@playball.example', 'Ana Silva');
SELECT register_user('bob', 'bob@example.org', 'Bob');
SELECT delete_user(id) FROM users WHERE username = 'bob';
SQL

step "the events as they arrive in Kafka (topic outbox.event.user, key = the user's id), decoded from protobuf"
"$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic outbox.event.user --count 4 --timeout-ms 60000

step "group management applied each event with its inbox row in one transaction, then committed the offset"
for _ in $(seq 1 100); do [ "$(wc -l <"$demo/gm.out")" -ge 4 ] && break; sleep 0.2; done
sed 's/^/  group management: /' "$demo/gm.out"

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
step "group management's view of users next to the auth database's"
pb_wait_converged auth group_management 30 || echo "  (not converged after 30 s)"
paste -d'|' <(pb_auth_users auth) <(pb_view_users group_management) \
  | awk -F'|' 'BEGIN { printf "  %-44s | %-44s\n  %-8s %-22s %-12s | %-8s %-22s %-12s\n", "auth.users", "group_management.users", "username", "email", "display_name", "username", "email", "display_name" }
               { printf "  %-8s %-22s %-12s | %-8s %-22s %-12s\n", $2, $3, $4, $6, $7, $8 }'
pb_query group_management "SELECT '  inbox: ' || count(*) || ' events, ' || sum(duplicates) || ' duplicates; groups: ' || (SELECT string_agg(name, ', ') FROM groups) FROM inbox"
kill -TERM "$gm_pid"; wait "$gm_pid" || true
sed 's/^/  /' "$demo/gm.log" | tail -n 1
if pb_converged auth group_management; then echo "  the two agree, field for field"; else echo "  the two DIFFER"; exit 1; fi
step "stopping PostgreSQL and Kafka"
[ "$code" = 0 ]
