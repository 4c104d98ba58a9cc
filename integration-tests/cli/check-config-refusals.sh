#!/usr/bin/env bash
# --check-config refuses what the start would refuse (issue 8): librdkafka's property checks,
# outboxd's producer rules, broker addresses and the DSN's options, each at FILE:LINE:COL, and
# never echoing a DSN value.
set -uo pipefail
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# check NAME DSN BROKERS PROPERTIES EXPECTED-CODE EXPECTED-LINE-REGEX
check() {
  local name=$1 dsn=$2 brokers=$3 props=$4 want=$5 pattern=$6
  printf 'source:\n  postgres:\n    dsn: "%s"\nsink:\n  kafka:\n    brokers: "%s"\n    properties:\n%s\n' \
    "$dsn" "$brokers" "$props" > "$dir/$name.yaml"
  out=$("$bin" --check-config --config "$dir/$name.yaml" 2>&1); code=$?
  echo "$name: $out"
  [ "$code" = "$want" ] || fail "$name: exit code $code, expected $want"
  echo "$out" | grep -Eq "$pattern" || fail "$name: no line matching $pattern"
  if echo "$out" | grep -q zzsecret; then fail "$name: a DSN value leaked"; fi
}
ok='host=db dbname=auth'
check librdkafka-value "$ok" k:9092 '      linger.ms: abc' 2 "^$dir/librdkafka-value.yaml:8:18: sink.kafka.properties.linger.ms: "
check librdkafka-name "$ok" k:9092 '      linger.mss: 5' 2 "librdkafka-name.yaml:8:19: sink.kafka.properties.linger.mss: "
check combination "$ok" k:9092 '      max.in.flight.requests.per.connection: 10' 2 "combination.yaml:7:5: sink.kafka.properties: librdkafka refuses"
check idempotence-true "$ok" k:9092 '      enable.idempotence: "True"' 0 '^ok$'
check partitioner "$ok" k:9092 '      partitioner: random' 2 "partitioner.yaml:8:20: .*'random' is not a partitioner.*murmur2_random"
check transactional "$ok" k:9092 '      transactional.id: t1' 2 "transactional.yaml:8:7: .*transactional.id"
check brokers "$ok" kafka:99999 '      {}' 2 "brokers.yaml:6:14: sink.kafka.brokers: 'kafka:99999': the port must be a number from 1 to 65535"
check sslmode 'host=db sslmode=zzsecret' k:9092 '      {}' 2 "sslmode.yaml:3:10: source.postgres.dsn: option 'sslmode' must be one of"
check port 'host=db port=zzsecret' k:9092 '      {}' 2 "port.yaml:3:10: source.postgres.dsn: option 'port' must be a number"
check option 'host=db passwrd=zzsecret' k:9092 '      {}' 2 "option.yaml:3:10: .*no option 'passwrd'"
echo "ok"
