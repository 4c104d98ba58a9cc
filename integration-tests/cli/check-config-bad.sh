#!/usr/bin/env bash
# A bad configuration: exit code 2 and one FILE:LINE:COL line per problem.
set -uo pipefail
bin=$1
dir=$2
out=$("$bin" --check-config --config "$dir/bad.yaml" 2>&1)
code=$?
echo "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ "$code" = 2 ] || fail "exit code $code, expected 2"
echo "$out" | grep -q "bad.yaml:4:5: .*slott" || fail "no error at 4:5 for the unknown key 'slott'"
echo "$out" | grep -q "bad.yaml:9:10: .*loud" || fail "no error at 9:10 for log.level 'loud'"
echo "$out" | grep -q "bad.yaml:6:3: .*brokers" || fail "no error at 6:3 for the missing sink.kafka.brokers"
out=$("$bin" --config /nonexistent/outboxd.yaml 2>&1); code=$?
[ "$code" = 2 ] || fail "missing file: exit code $code, expected 2"
out=$("$bin" --bogus 2>&1); code=$?
[ "$code" = 2 ] || fail "unknown flag: exit code $code, expected 2"
out=$("$bin" --check-config --config "$dir/bad-dsn.yaml" 2>&1); code=$?
echo "$out"
[ "$code" = 2 ] || fail "bad dsn: exit code $code, expected 2"
echo "$out" | grep -q "not a valid libpq connection string" || fail "bad dsn: no clear message"
if echo "$out" | grep -q "zzword"; then fail "bad dsn: the password leaked into the message"; fi
echo "ok"
