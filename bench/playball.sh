#!/usr/bin/env bash
# The PlayBall story's whole path (examples/playball): auth register_user() -> outbox -> outboxd
# -> Kafka -> playball-group-management -> group management's view of users, on one PostgreSQL
# (two databases) and one Kafka broker started by up.sh.
#   - PostgreSQL runs with track_commit_timestamp = on, so both ends of the path are commit
#     timestamps on the same server clock: the auth commit (the event's source.commit_time, kept
#     in the view as users.committed_at) and the commit of group management's transaction that made
#     the user visible (pg_xact_commit_timestamp(users.xmin)). latency = the second minus the first;
#   - steady rates (BENCH_RATES, default "100 1000" registrations/s, BENCH_DURATION seconds each,
#     default 20): pgbench --rate calls register_user() (one transaction each, 4 clients), then
#     the script waits until every user is visible and reports the p50/p99/max latency of the users
#     of that step, and the p99 to the moment receive_event() began applying the event
#     (inbox.received_at), which splits the path into relay+Kafka+consumer and the last commit;
#   - sustained: pgbench unthrottled for BENCH_DURATION seconds; registrations/s = users visible
#     in the view / (last visible commit - first auth commit), beside the auth-side rate alone;
#   - the load average before and after each step (the machine may be shared).
#   bench/playball.sh
# Environment: BENCH_RATES, BENCH_DURATION, BENCH_CLIENTS (default 4), BENCH_BUILD_DIR (default
# build-release), BENCH_NO_BUILD=1 uses BENCH_BUILD_DIR as it is, BENCH_KEEP_WORK=1 keeps the work folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
rates=${BENCH_RATES:-"100 1000"}
duration=${BENCH_DURATION:-20}
clients=${BENCH_CLIENTS:-4}
build=${BENCH_BUILD_DIR:-$root/build-release}

"$root/scripts/install-deps.sh" --test >/dev/null
[ "${BENCH_NO_BUILD:-0}" = 1 ] || BUILD_DIR=$build "$root/scripts/build.sh" --release --no-tests >/dev/null

relay_pid="" gm_pid=""
bench_stop() {
  local p
  for p in $gm_pid $relay_pid; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
}
work=$(mktemp -d /tmp/outboxd-playball.XXXXXX)
chmod 755 "$work"
trap bench_cleanup EXIT
OUTBOXD_IT_TLS=0 OUTBOXD_IT_SASL=0 "$root/integration-tests/env/up.sh" "$work/services" >/dev/null
. "$work/services/env.sh"
psql -X -q "$OUTBOXD_IT_PG_DSN" -c "ALTER SYSTEM SET track_commit_timestamp = on"
"$root/integration-tests/env/ctl.sh" "$work/services" pg-restart
. "$root/examples/playball/lib.sh"
pb_create auth gm outboxd
pb_relay_config "$work/relay.yaml" auth outboxd outbox.event
"$build/outboxd" --config "$work/relay.yaml" 2>"$work/relay.log" &
relay_pid=$!
"$build/playball-group-management" consume --db "$(pb_dsn gm)" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" \
  >/dev/null 2>"$work/gm.log" &
gm_pid=$!
cat >"$work/register.sql" <<'SQL'
SELECT register_user('user-' || u, 'user-' || u || '@example.org', 'User ' || u) FROM gen_random_uuid() u;
SQL

load() { cut -d' ' -f1-3 /proc/loadavg; }
# wait_visible: until every auth user is in the view (at most 120 s).
wait_visible() {
  for _ in $(seq 1 600); do
    [ "$(pb_query gm "SELECT count(*) FROM users")" = "$(pb_query auth "SELECT count(*) FROM users")" ] && return 0
    sleep 0.2
  done
  echo "the view did not catch up within 120 s" >&2
  return 1
}
# One warm-up registration (topic creation, consumer assignment), not counted.
pb_query auth "SELECT register_user('warm-up', 'warm-up@example.org', 'Warm up')" >/dev/null
wait_visible
mark=$(pb_query gm "SELECT max(applied_at) FROM users")

echo "| step | registrations | auth rate (/s) | path rate (/s) | p50 (ms) | p99 (ms) | max (ms) | p99 to receive_event (ms) | load before | load after |"
echo "|---|---|---|---|---|---|---|---|---|---|"
step() {  # step NAME [--rate R]
  local name=$1 before stats
  shift
  before=$(load)
  pgbench -n -f "$work/register.sql" -c "$clients" -j 2 -T "$duration" "$@" "$(pb_dsn auth)" >"$work/pgbench.log" 2>&1 \
    || { cat "$work/pgbench.log" >&2; return 1; }
  wait_visible
  stats=$(pb_query gm "
    WITH s AS (SELECT u.committed_at, pg_xact_commit_timestamp(u.xmin) AS visible, i.received_at
               FROM users u JOIN inbox i ON i.aggregate_id = u.id::text AND i.type = 'UserRegistered'
               WHERE u.applied_at > '$mark')
    SELECT count(*),
           round(count(*) / extract(epoch FROM max(committed_at) - min(committed_at))::numeric, 0),
           round(count(*) / extract(epoch FROM max(visible) - min(committed_at))::numeric, 0),
           round((1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY visible - committed_at)))::numeric, 1),
           round((1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY visible - committed_at)))::numeric, 1),
           round((1000 * extract(epoch FROM max(visible - committed_at)))::numeric, 1),
           round((1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY received_at - committed_at)))::numeric, 1)
    FROM s")
  echo "| $name | $(echo "$stats" | sed 's/|/ | /g') | $before | $(load) |"
  mark=$(pb_query gm "SELECT max(applied_at) FROM users")
}
for r in $rates; do step "steady $r/s" --rate "$r"; done
step "unthrottled, $clients clients"
echo
echo "$(nproc) cores; $duration s per step; events in the inbox: $(pb_query gm "SELECT count(*) FROM inbox"), duplicates $(pb_query gm "SELECT sum(duplicates) FROM inbox")"
