# Shared steps of the PlayBall example for scripts/demo.sh, its integration test and its bench;
# sourced, not run. Needs the services' env.sh (OUTBOXD_IT_PG_PORT, OUTBOXD_IT_KAFKA_BROKERS).
playball_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pb_dsn() { echo "host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=$1"; }
pb_sql() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 "$(pb_dsn "$db")" "$@"; }
pb_query() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 "$(pb_dsn "$db")" -c "$*"; }

# pb_create AUTH_DB GM_DB SLOT: both databases with their schemas, and the auth database's
# publication and slot, created before any write so that no event precedes the slot.
pb_create() {
  local auth=$1 gm=$2 slot=$3
  pb_sql postgres -c "CREATE DATABASE $auth" -c "CREATE DATABASE $gm"
  pb_sql "$auth" -f "$playball_dir/auth/schema.sql"
  pb_sql "$gm" -f "$playball_dir/group-management/schema.sql"
  pb_sql "$auth" -c "CREATE PUBLICATION $slot FOR TABLE outbox" \
    -c "SELECT 1 FROM pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
}

# pb_relay_config FILE AUTH_DB SLOT TOPIC_PREFIX [METRICS_PORT]: outboxd's configuration.
pb_relay_config() {
  local file=$1 auth=$2 slot=$3 prefix=$4 port=${5:-}
  cat >"$file" <<YAML
source:
  postgres:
    dsn: "$(pb_dsn "$auth")"
    slot: $slot
    publication: $slot
routing:
  topic: "$prefix.{aggregatetype}"
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
metrics:
  listen: "${port:+127.0.0.1:$port}"
YAML
  # PB_DESCRIPTOR_SET=FILE (a descriptor set of examples/playball/proto): typed payloads, each
  # event published as its playball.auth.v1 message. UserDeleted's payload carries the whole
  # user, of which the message keeps the id: hence unknown_fields: ignore.
  if [ -n "${PB_DESCRIPTOR_SET:-}" ]; then
    cat >>"$file" <<YAML
payload:
  protobuf:
    descriptor_set: "$PB_DESCRIPTOR_SET"
    types:
      UserRegistered: playball.auth.v1.UserRegistered
      UserUpdated: playball.auth.v1.UserUpdated
      UserDeleted: playball.auth.v1.UserDeleted
    unknown_fields: ignore
    untyped: fail
YAML
  fi
}

# Each user, field for field, in the auth database and in group management's view.
pb_auth_users() { pb_query "$1" "SELECT id, username, email, display_name FROM users ORDER BY id"; }
pb_view_users() { pb_query "$1" "SELECT id, username, email, display_name FROM users ORDER BY id"; }

# pb_converged AUTH_DB GM_DB: true when the view equals the auth database's users.
pb_converged() { [ "$(pb_auth_users "$1")" = "$(pb_view_users "$2")" ]; }

# pb_wait_converged AUTH_DB GM_DB SECONDS: waits until the view equals the auth users and every
# outbox row has its inbox row.
pb_wait_converged() {
  local auth=$1 gm=$2 secs=$3 i events
  for i in $(seq 1 $((secs * 5))); do
    events=$(pb_query "$auth" "SELECT count(*) FROM outbox")
    if [ "$(pb_query "$gm" "SELECT count(*) FROM inbox")" = "$events" ] && pb_converged "$auth" "$gm"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# pb_random_history AUTH_DB OPS MAX_USERS [PAUSE_S]: a random sequence of registrations, updates
# (of one to three fields) and deletions, each its own transaction; at most MAX_USERS alive.
pb_random_history() {
  local auth=$1 ops=$2 max_users=$3 pause=${4:-0}
  pb_sql "$auth" <<SQL
DO \$\$
DECLARE
  ids uuid[] := '{}';
  r float8;
  i int;
  tag text;
BEGIN
  FOR step IN 1..$ops LOOP
    r := random();
    tag := step || '-' || substr(md5(random()::text), 1, 6);
    IF cardinality(ids) = 0 OR (r < 0.3 AND cardinality(ids) < $max_users) THEN
      ids := ids || register_user('user-' || tag, 'user-' || tag || '@example.org', 'User ' || tag);
    ELSIF r < 0.88 THEN
      i := 1 + floor(random() * cardinality(ids))::int;
      PERFORM update_user(ids[i],
                          CASE WHEN random() < 0.3 THEN 'renamed-' || tag END,
                          CASE WHEN random() < 0.6 THEN 'mail-' || tag || '@example.net' END,
                          CASE WHEN random() < 0.6 THEN 'Display ' || tag END);
    ELSE
      i := 1 + floor(random() * cardinality(ids))::int;
      PERFORM delete_user(ids[i]);
      ids := ids[1:i - 1] || ids[i + 1:];
    END IF;
    COMMIT;
    IF $pause > 0 THEN PERFORM pg_sleep($pause); END IF;
  END LOOP;
END
\$\$;
SQL
}

# The two views side by side (demo and test logs).
pb_side_by_side() {
  local auth=$1 gm=$2
  psql -X -q "$(pb_dsn "$auth")" -c "SELECT username, email, display_name FROM users ORDER BY username" \
    | sed 's/^/  auth:             /'
  psql -X -q "$(pb_dsn "$gm")" -c "SELECT username, email, display_name FROM users ORDER BY username" \
    | sed 's/^/  group management: /'
}
