#!/usr/bin/env bash
# The PlayBall story's integration scenarios (examples/playball), on the services fixture's real
# PostgreSQL and Kafka: playball-test.sh SCENARIO. Needs OUTBOXD_BIN and PLAYBALL_GM_BIN (ctest
# sets them) and the services' environment (run-with-env.sh).
#
#   playball_random_history_converges_and_a_replay_changes_nothing
#   playball_consumer_and_relay_sigkilled_repeatedly_converge
#   playball_group_for_a_new_user_fails_until_its_event_arrives
#   playball_typed_payloads_converge (PB_DESCRIPTOR_SET: the example's descriptor set)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/examples/playball/lib.sh"
scenario=${1:?usage: playball-test.sh SCENARIO}
: "${OUTBOXD_BIN:?}" "${PLAYBALL_GM_BIN:?}"

# Names of this run's databases, slot, topic and consumer group.
n="pb$(date +%s%N | tail -c 7)$$"
auth="${n}_auth" gm="${n}_gm" slot="${n}" prefix="${n}.event" group="${n}-gm"
topic="$prefix.user"
work=$(mktemp -d "/tmp/playball-it.XXXXXX")
relay_pid="" consumer_pid="" history_pid=""
cleanup() {
  local p
  for p in $history_pid $consumer_pid $relay_pid; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pb_sql postgres -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" \
    >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "outbox rows: $(pb_query "$auth" "SELECT count(*) FROM outbox" 2>&1); inbox rows, duplicates, rejected: $(inbox_stat 2>&1)" >&2
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f (last 30 lines)" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}
pass() { echo "PASS: $*"; }

relay_starts=0
start_relay() {
  "$OUTBOXD_BIN" --config "$work/relay.yaml" >>"$work/relay.log" 2>&1 &
  relay_pid=$!
  relay_starts=$((relay_starts + 1))
}
# Waits until the relay started last is streaming (a view can converge before it is: the one
# killed before it may have sent everything), so that a stop tests its shutdown, not its start.
wait_relay_streaming() {
  local i
  for i in $(seq 1 300); do
    [ "$(grep -c 'streaming from slot' "$work/relay.log" 2>/dev/null)" -ge "$relay_starts" ] && return 0
    kill -0 "$relay_pid" 2>/dev/null || fail "relay exited before it was streaming"
    sleep 0.1
  done
  fail "relay started $relay_starts times but did not stream after the last start within 30 s"
}
start_consumer() {
  "$PLAYBALL_GM_BIN" consume --db "$(pb_dsn "$gm")" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$topic" \
    --group "$group" --instance "$group-1" "$@" >>"$work/consumer.out" 2>>"$work/consumer.log" &
  consumer_pid=$!
}
stop() {  # stop PID: SIGTERM, wait, return its exit code
  local p=$1 code=0
  kill -TERM "$p" 2>/dev/null || true
  wait "$p" || code=$?
  return $code
}
kill9() { kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
inbox_stat() { pb_query "$gm" "SELECT count(*), coalesce(sum(duplicates), 0), count(*) FILTER (WHERE outcome LIKE 'rejected%') FROM inbox"; }
# Everything in the view, versions and timestamps included: "changes nothing" means this is equal.
view_digest() { pb_query "$gm" "SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM users u"; }

[ "$scenario" = playball_typed_payloads_converge ] || unset PB_DESCRIPTOR_SET
pb_create "$auth" "$gm" "$slot"
pb_relay_config "$work/relay.yaml" "$auth" "$slot" "$prefix"

case "$scenario" in
playball_random_history_converges_and_a_replay_changes_nothing)
  start_relay
  start_consumer
  t0=$(date +%s)
  pb_random_history "$auth" 3000 300
  events=$(pb_query "$auth" "SELECT count(*) FROM outbox")
  users=$(pb_query "$auth" "SELECT count(DISTINCT aggregateid) FROM outbox")
  echo "history: $events events over $users users ($(pb_query "$auth" "SELECT string_agg(type || ' ' || c, ', ') FROM (SELECT type, count(*) c FROM outbox GROUP BY type ORDER BY type) t")), $(pb_query "$auth" "SELECT count(*) FROM users") users left"
  pb_wait_converged "$auth" "$gm" 120 || fail "group management's view did not converge to the auth users within 120 s"
  echo "converged $(( $(date +%s) - t0 )) s after the history started"
  read -r rows dups rejected <<<"$(inbox_stat | tr '|' ' ')"
  [ "$rows" = "$events" ] || fail "inbox has $rows rows for $events events"
  [ "$rejected" = 0 ] || fail "$rejected events rejected"
  [ "$(pb_query "$gm" "SELECT count(*) FROM inbox WHERE outcome NOT IN ('applied')")" = 0 ] \
    || fail "outcomes other than applied in an orderly run: $(pb_query "$gm" "SELECT string_agg(DISTINCT outcome, ', ') FROM inbox")"
  pass "view equals the auth users field for field ($(pb_query "$gm" "SELECT count(*) FROM users") users), one inbox row per event, $dups duplicates"
  pb_sql "$gm" -c "SELECT create_group(id, 'group of ' || username) FROM users ORDER BY id LIMIT 5" >/dev/null
  before=$(view_digest)
  groups_before=$(pb_query "$gm" "SELECT md5(string_agg(g::text, ',' ORDER BY id)) FROM groups g")
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 (exit $?)"

  start_consumer --from-beginning
  ok=0
  for _ in $(seq 1 600); do
    read -r rows2 dups2 _ <<<"$(inbox_stat | tr '|' ' ')"
    if [ "$dups2" -ge $((dups + events)) ]; then ok=1; break; fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || fail "replay: inbox counted $((dups2 - dups)) duplicates of $events events within 120 s"
  sleep 1
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 after the replay"
  read -r rows2 dups2 _ <<<"$(inbox_stat | tr '|' ' ')"
  [ "$rows2" = "$events" ] || fail "replay added inbox rows: $rows2 for $events events"
  [ "$((dups2 - dups))" = "$events" ] || fail "replay counted $((dups2 - dups)) duplicates for $events events"
  [ "$(view_digest)" = "$before" ] || fail "the replay changed the view"
  [ "$(pb_query "$gm" "SELECT md5(string_agg(g::text, ',' ORDER BY id)) FROM groups g")" = "$groups_before" ] \
    || fail "the replay changed the groups"
  grep -q "replaying $topic" "$work/consumer.log" || fail "the consumer did not say it replays"
  pass "replay from the beginning: $events events read again, each counted as a duplicate in the inbox; view and groups unchanged"

  # The odd cases: the inbox emptied (pruned, or restored from an old backup), then a replay.
  # Every event is then new to the inbox, and the versions and deleted_users keep the view as it is.
  pb_query "$gm" "DELETE FROM inbox" >/dev/null
  start_consumer --from-beginning
  pb_wait_converged "$auth" "$gm" 120 || fail "replay after the inbox was emptied: not all events received"
  sleep 1
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 after the second replay"
  outcomes=$(pb_query "$gm" "SELECT string_agg(outcome || ' ' || c, ', ') FROM (SELECT outcome, count(*) c FROM inbox GROUP BY 1 ORDER BY 1) t")
  [ "$(pb_query "$gm" "SELECT count(*) FROM inbox WHERE outcome NOT IN ('stale', 'ignored: user deleted', 'already deleted')")" = 0 ] \
    || fail "replay after the inbox was emptied: unexpected outcomes: $outcomes"
  [ "$(view_digest)" = "$before" ] || fail "the replay after the inbox was emptied changed the view"
  pass "replay with the inbox emptied: $outcomes; view unchanged"
  stop "$relay_pid" || fail "relay did not stop with exit 0 (exit $?)"
  ;;

playball_typed_payloads_converge)
  : "${PB_DESCRIPTOR_SET:?a descriptor set of examples/playball/proto, ctest sets it}"
  start_relay
  start_consumer
  pb_random_history "$auth" 1000 100
  events=$(pb_query "$auth" "SELECT count(*) FROM outbox")
  pb_wait_converged "$auth" "$gm" 120 || fail "typed payloads: the view did not converge to the auth users within 120 s"
  read -r rows dups rejected <<<"$(inbox_stat | tr '|' ' ')"
  [ "$rows" = "$events" ] || fail "inbox has $rows rows for $events events"
  [ "$rejected" = 0 ] || fail "$rejected events rejected"
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 (exit $?)"
  # The records really were the binary messages, not JSON passed through.
  typed=$(sed -n 's/.*typed payloads decoded: \([0-9]*\).*/\1/p' "$work/consumer.log" | tail -n 1)
  [ "${typed:-0}" -ge "$events" ] || fail "the consumer decoded ${typed:-0} typed payloads for $events events"
  stop "$relay_pid" || fail "relay did not stop with exit 0 (exit $?)"
  pass "typed payloads (playball.auth.v1 messages): $events events over $(pb_query "$auth" "SELECT count(DISTINCT aggregateid) FROM outbox") users, view equals the auth users field for field"
  ;;

playball_consumer_and_relay_sigkilled_repeatedly_converge)
  start_relay
  start_consumer --max-batch 20
  pb_random_history "$auth" 1500 200 0.006 &
  history_pid=$!
  kills=0
  while kill -0 "$history_pid" 2>/dev/null && [ "$kills" -lt 6 ]; do
    # Mid-stream: only once this consumer has applied something (not while it joins the group).
    seen=$(pb_query "$gm" "SELECT count(*) FROM inbox")
    for _ in $(seq 1 100); do
      [ "$(pb_query "$gm" "SELECT count(*) FROM inbox")" -gt "$seen" ] && break
      kill -0 "$history_pid" 2>/dev/null || break
      sleep 0.2
    done
    sleep "0.$((RANDOM % 8 + 2))"
    kill -0 "$history_pid" 2>/dev/null || break
    kill9 "$consumer_pid"; kills=$((kills + 1))
    start_consumer --max-batch 20
  done
  wait "$history_pid" || fail "the history failed"; history_pid=""
  echo "consumer SIGKILLed $kills times during $(pb_query "$auth" "SELECT count(*) FROM outbox") events"
  [ "$kills" -ge 3 ] || fail "the history ended before the consumer was killed three times"
  pb_wait_converged "$auth" "$gm" 120 || fail "view did not converge after the consumer kills"
  read -r rows dups rejected <<<"$(inbox_stat | tr '|' ' ')"
  pass "consumer SIGKILLed $kills times mid-stream: view equals the auth users, $rows events, $dups re-deliveries skipped as duplicates"

  # The crash the inbox is for, made certain: the consumer ends right after a database commit,
  # before that batch's offsets are committed; started again, it gets the batch again.
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 (exit $?)"
  pb_random_history "$auth" 100 200
  code=0
  PLAYBALL_GM_TEST_EXIT_AFTER_DB_COMMIT=1 "$PLAYBALL_GM_BIN" consume --db "$(pb_dsn "$gm")" \
    --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic "$topic" --group "$group" --instance "$group-1" --max-batch 20 \
    >>"$work/consumer.out" 2>>"$work/consumer.log" || code=$?
  [ "$code" = 3 ] || fail "the consumer with the exit-after-commit hook exited $code, expected 3"
  start_consumer --max-batch 20
  pb_wait_converged "$auth" "$gm" 120 || fail "view did not converge after the exit between the two commits"
  read -r rows dups2 rejected <<<"$(inbox_stat | tr '|' ' ')"
  [ "$dups2" -gt "$dups" ] || fail "the batch applied before the exit was not delivered again (duplicates $dups -> $dups2)"
  pass "consumer ended between its database commit and its offset commit: $((dups2 - dups)) events delivered again, skipped as duplicates; view equals the auth users"
  dups=$dups2

  events_before=$(pb_query "$auth" "SELECT count(*) FROM outbox")
  pb_random_history "$auth" 1500 200 0.004 &
  history_pid=$!
  kills=0
  while kill -0 "$history_pid" 2>/dev/null && [ "$kills" -lt 6 ]; do
    sleep 1.2
    kill9 "$relay_pid"; kills=$((kills + 1))
    start_relay
  done
  wait "$history_pid" || fail "the second history failed"; history_pid=""
  [ "$kills" -ge 3 ] || fail "the history ended before the relay was killed three times"
  pb_wait_converged "$auth" "$gm" 120 || fail "view did not converge after the relay kills"
  read -r rows2 dups2 rejected <<<"$(inbox_stat | tr '|' ' ')"
  events=$(pb_query "$auth" "SELECT count(*) FROM outbox")
  [ "$rows2" = "$events" ] || fail "inbox has $rows2 rows for $events events"
  [ "$rejected" = 0 ] || fail "$rejected events rejected"
  pass "relay SIGKILLed $kills times mid-stream: view equals the auth users, $((events - events_before)) new events, $((dups2 - dups)) re-sent ones landed in the inbox as duplicates"
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 (exit $?)"
  wait_relay_streaming
  stop "$relay_pid" || fail "relay did not stop with exit 0 (exit $?)"
  ;;

playball_group_for_a_new_user_fails_until_its_event_arrives)
  start_consumer
  id=$(pb_query "$auth" "SELECT register_user('ana', 'ana@example.org', 'Ana')")
  sleep 2
  code=0
  "$PLAYBALL_GM_BIN" create-group --db "$(pb_dsn "$gm")" --owner "$id" --name "Sunday league" >"$work/cg.out" 2>&1 || code=$?
  cat "$work/cg.out"
  [ "$code" = 1 ] || fail "create-group without the relay exited $code, expected 1"
  grep -q "unknown user $id" "$work/cg.out" || fail "create-group without the relay did not say unknown user"
  pass "without the relay running, creating a group for the just-registered user fails: unknown user"
  start_relay
  t0=$(date +%s%N)
  ok=0
  for _ in $(seq 1 300); do
    if "$PLAYBALL_GM_BIN" create-group --db "$(pb_dsn "$gm")" --owner "$id" --name "Sunday league" >"$work/cg.out" 2>&1; then
      ok=1; break
    fi
    sleep 0.1
  done
  cat "$work/cg.out"
  [ "$ok" = 1 ] || fail "create-group still fails 30 s after the relay started"
  [ "$(pb_query "$gm" "SELECT count(*) FROM groups WHERE owner_id = '$id' AND name = 'Sunday league'")" = 1 ] \
    || fail "the group is not in group management's database"
  pass "with the relay running the group is created $(( ($(date +%s%N) - t0) / 1000000 )) ms after the relay started"
  stop "$consumer_pid" || fail "consumer did not stop with exit 0 (exit $?)"
  stop "$relay_pid" || fail "relay did not stop with exit 0 (exit $?)"
  ;;
*) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
