#!/usr/bin/env bash
# SIGHUP is logged and ignored (the process keeps running); SIGTERM then stops it with exit 0.
# --version names the commit and the libraries. No services: the database is unreachable.
set -uo pipefail
bin=$1
dir=$2
fail() { echo "FAIL: $*"; [ -f "$log" ] && cat "$log"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
version=$("$bin" --version) || fail "--version exited $?"
echo "$version"
echo "$version" | grep -Eq "^outboxd [0-9]+\.[0-9]+\.[0-9]+ .*\(commit ([0-9a-f]+|unknown)\)" || fail "--version names no commit"
echo "$version" | grep -q "^librdkafka [0-9]" || fail "--version names no librdkafka"
echo "$version" | grep -q "^libpq [0-9]" || fail "--version names no libpq"

"$bin" --config "$dir/signals.yaml" 2>"$log" &
pid=$!
for _ in $(seq 50); do grep -q "starting" "$log" && break; sleep 0.1; done
grep -q "starting" "$log" || fail "outboxd did not start"
kill -HUP "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "SIGHUP ended the process"
grep -q "SIGHUP received: only payload.protobuf.descriptor_set is reloaded" "$log" || fail "no log line for SIGHUP"
grep '"level":"info"' "$log" | grep -q '"slot":"outboxd"' || fail "JSON lines carry no slot field"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "SIGTERM did not stop the process within 10 s"; fi
wait "$pid"
code=$?
[ "$code" = 0 ] || fail "exit code $code after SIGTERM, expected 0"
echo "ok"
