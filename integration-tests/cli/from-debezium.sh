#!/usr/bin/env bash
# outboxd --from-debezium: a Kafka Connect outbox connector converts (exit 0) to YAML that
# --check-config accepts; a file that is not such a configuration, or no file, is exit 2 with the reason.
set -uo pipefail
bin=$1
data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --from-debezium "$data/connect-outbox.json" >"$work/out.yaml" 2>"$work/err" || fail "connect JSON: exit $?: $(cat "$work/err")"
grep -q 'topic_regex: "(?<service>\[a-z\]+)\\\\.(?<entity>.+)"' "$work/out.yaml" || fail "no topic_regex in: $(cat "$work/out.yaml")"
out=$(OUTBOXD_PG_PASSWORD=x OUTBOXD_KAFKA_BROKERS=kafka:9092 "$bin" --check-config --config "$work/out.yaml" 2>&1) \
  || fail "the converted YAML does not pass --check-config: $out"
[ "$out" = ok ] || fail "--check-config printed: $out"

"$bin" --from-debezium "$data/server-outbox.properties" >"$work/server.yaml" 2>"$work/err" || fail "server properties: exit $?"
grep -q '^  header_encoding: json$' "$work/server.yaml" || fail "no header_encoding: json"

"$bin" --from-debezium "$data/../../../config/example.yaml" >"$work/out2" 2>"$work/err2"
rc=$?
[ $rc -eq 2 ] || fail "an outboxd YAML: exit $rc, want 2"
grep -q "is not a Debezium PostgreSQL connector configuration with the Outbox Event Router: it has no connector.class" "$work/err2" \
  || fail "stderr: $(cat "$work/err2")"
[ -s "$work/out2" ] && fail "stdout not empty for a refused file"

"$bin" --from-debezium "$work/missing.json" >/dev/null 2>"$work/err3"
rc=$?
[ $rc -eq 2 ] || fail "a missing file: exit $rc, want 2"
grep -q "cannot read" "$work/err3" || fail "stderr: $(cat "$work/err3")"
echo "from-debezium: ok"
