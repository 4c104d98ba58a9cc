#!/usr/bin/env bash
# Side by side against Debezium itself (issue 9): for each case, the same rows (or logical decoding
# messages) on one PostgreSQL go to two slots, one read by Debezium Server 3.6.1 with the Outbox
# Event Router (bench/debezium/run.sh, the case's application.properties), the other by outboxd
# with the YAML that `outboxd --from-debezium` makes of that same file. Debezium writes to the
# services' Kafka broker, outboxd to a second broker this script starts, so both keep the very
# topic names the configuration gives. The records are then compared topic by topic, per key in
# order: partition, key, value bytes (null = tombstone) and every header Debezium sets except its
# own `__debezium.*` bookkeeping (a deliberate difference; outboxd's extra headers type,
# aggregate_type and content-type are not compared either).
#
#   integration-tests/debezium-compare.sh [--env DIR] [--work DIR] [--build DIR] [--cases N,N,...]
#
#   --env DIR    services already started by integration-tests/env/up.sh DIR (else this script
#                starts its own under WORK/env and stops them at the end)
#   --work DIR   work folder (default: a new folder under /tmp)
#   --build DIR  the build holding outboxd and outboxd-consume (default: build)
#   --cases      the case numbers to run (default: all)
# Prints one line per case (case | records | result) and exits 1 when any case differs.
# Needs: psql, Java 21+ and Maven (bench/debezium/fetch.sh), python3 (the comparison).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/integration-tests/env/lib.sh"
. "$root/bench/debezium/lib.sh"

env_dir=
work=
build="$root/build"
only=
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --cases) only=",$2,"; shift 2 ;;
    *) echo "usage: $0 [--env DIR] [--work DIR] [--build DIR] [--cases N,N,...]" >&2; exit 2 ;;
  esac
done
for tool in outboxd outboxd-consume; do
  [ -x "$build/$tool" ] || { echo "$build/$tool is missing: build first (scripts/build.sh) or pass --build DIR" >&2; exit 2; }
done
build=$(cd "$build" && pwd)
[ -n "$work" ] || work=$(mktemp -d /tmp/debezium-compare.XXXXXX)
mkdir -p "$work"
work=$(cd "$work" && pwd)
chmod 755 "$work"
dist=$("$root/bench/debezium/fetch.sh")
java=$(debezium_java)

own_env=0
if [ -z "$env_dir" ]; then
  env_dir="$work/env"
  OUTBOXD_IT_SASL=0 OUTBOXD_IT_TLS=0 "$root/integration-tests/env/up.sh" "$env_dir" >/dev/null
  own_env=1
fi
. "$env_dir/env.sh"
dbz_brokers=$OUTBOXD_IT_KAFKA_BROKERS
kport=$(free_port); cport=$(free_port)
while [ "$cport" = "$kport" ]; do cport=$(free_port); done
JAVA_HOME=${java%/bin/java} prepare_broker "$work/kafka-outboxd" "$OUTBOXD_IT_KAFKA_LIBS" PLAINTEXT "$kport" "$cport"
"$work/kafka-outboxd/start.sh"
obx_brokers="127.0.0.1:$kport"

dbz_pid=
obx_pid=
cleanup() {
  [ -n "$dbz_pid" ] && kill "$dbz_pid" 2>/dev/null || true
  [ -n "$obx_pid" ] && kill "$obx_pid" 2>/dev/null || true
  stop_broker "$work/kafka-outboxd" || true
  if [ "$own_env" = 1 ]; then "$root/integration-tests/env/down.sh" "$env_dir" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

db=dbzcmp
admin_dsn="host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=postgres"
dsn="host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=$db"
psql -X -q -v ON_ERROR_STOP=1 "$admin_dsn" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$dsn" "$@"; }
# outboxd's YAML names the password as ${OUTBOXD_PG_PASSWORD} (the converter copies no secret);
# the test server trusts local connections, so any value does.
export OUTBOXD_PG_PASSWORD=postgres


# --- the cases ----------------------------------------------------------------------------
# Each case sets: title, columns (extra DDL after Debezium's columns), payload_type, props (the
# router's and the formats' lines), value_serializer, rows (SQL run after the slots exist),
# expected (records each relay must send), topics (space separated).
uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
jrow() {  # jrow TYPE KEY EVENT SEQ [EXTRA_COLUMNS EXTRA_VALUES]: one INSERT with a jsonb payload
  echo "INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload${5:+, $5}) VALUES (gen_random_uuid(), '$1', '$2', '$3', '{\"seq\": $4, \"name\": \"n$4\", \"nested\": {\"a\": [1, 2]}, \"price\": 1.50}'${6:+, $6});"
}
case_def() {
  title= columns= payload_type=jsonb props= value_serializer=StringSerializer rows= expected=0 topics= messages=0
  CMP_JSON_NUMBERS= CMP_PARTITIONS=
  local t a b
  case "$1" in
    1) title="defaults"
       a=c1order; b=c1customer
       rows="BEGIN; $(jrow $a k1 Created 1) $(jrow $b k2 Created 2) $(jrow $a k1 Paid 3) COMMIT;
             BEGIN; $(jrow $a k3 Created 4) $(jrow $b k2 Renamed 5) $(jrow $a k1 Shipped 6) COMMIT;"
       expected=6; topics="outbox.event.$a outbox.event.$b" ;;
    2) title="bytea payload, format.value=binary"
       payload_type=bytea; value_serializer=ByteArraySerializer; a=c2blob
       props="debezium.format.value=binary"
       rows="BEGIN;
             INSERT INTO public.outbox VALUES (gen_random_uuid(), '$a', 'k1', 'Created', '\\x00ff10e29c93'::bytea);
             INSERT INTO public.outbox VALUES (gen_random_uuid(), '$a', 'k2', 'Created', convert_to('plain text', 'UTF8'));
             INSERT INTO public.outbox VALUES (gen_random_uuid(), '$a', 'k1', 'Changed', '\\x'::bytea);
             COMMIT;"
       expected=3; topics="outbox.event.$a" ;;
    3) title="tombstone on empty payload"
       a=c3order
       props="debezium.transforms.outbox.route.tombstone.on.empty.payload=true"
       rows="BEGIN; $(jrow $a k1 Created 1)
             INSERT INTO public.outbox VALUES (gen_random_uuid(), '$a', 'k1', 'Deleted', NULL);
             $(jrow $a k2 Created 2) COMMIT;"
       expected=3; topics="outbox.event.$a" ;;
    4|5) a=c$1order
       columns=", tracingspancontext text, version integer"
       props="debezium.transforms.outbox.table.fields.additional.placement=type:header:eventType,tracingspancontext:header:traceparent,version:header"
       if [ "$1" = 4 ]; then title="additional fields as headers"; else
         title="JSON header format (set explicitly)"; props+=$'\n'"debezium.format.header=json"; fi
       rows="BEGIN; $(jrow $a k1 Created 1 'tracingspancontext, version' "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 3")
             $(jrow $a k2 Created 2 'tracingspancontext, version' "NULL, 4") COMMIT;"
       expected=2; topics="outbox.event.$a" ;;
    6) title="additional field as envelope, format.value=json"
       a=c6order
       props="debezium.transforms.outbox.table.fields.additional.placement=type:envelope:eventType
debezium.format.value=json
debezium.format.value.schemas.enable=false"
       rows="BEGIN; $(jrow $a k1 Created 1) $(jrow $a k2 Renamed 2) COMMIT;"
       expected=2; topics="outbox.event.$a" ;;
    7) title="expand.json.payload, format.value=json"
       a=c7order
       props="debezium.transforms.outbox.table.expand.json.payload=true
debezium.format.value=json
debezium.format.value.schemas.enable=false"
       CMP_JSON_NUMBERS=1
       rows="BEGIN; $(jrow $a k1 Created 1) $(jrow $a k2 Renamed 2) COMMIT;"
       expected=2; topics="outbox.event.$a" ;;
    8) title="custom route regex"
       # \$1 and \$2: Debezium Server's configuration would expand \${name} itself.
       props='debezium.transforms.outbox.route.topic.regex=(?<service>[a-z0-9]+)\\.(?<entity>.+)
debezium.transforms.outbox.route.topic.replacement=$1-events.$2'
       rows="BEGIN; $(jrow c8billing.Invoice k1 Created 1) $(jrow C8Customer k2 Created 2) $(jrow c8billing.Invoice k1 Paid 3) COMMIT;"
       expected=3; topics="c8billing-events.Invoice C8Customer" ;;
    9) title="partition placement"
       a=c9order
       columns=", part integer"
       props="debezium.transforms.outbox.table.fields.additional.placement=part:partition"
       rows="BEGIN; $(jrow $a k1 Created 1 part 0) $(jrow $a k1 Paid 2 part 2) $(jrow $a k2 Created 3 part 1) $(jrow $a k3 Created 4 part 2) COMMIT;"
       CMP_PARTITIONS=1:0,2:2,3:1,4:2
       expected=4; topics="outbox.event.$a" ;;
    10) title="UPDATE and DELETE (op.invalid.behavior=warn: dropped)"
       a=c10order
       props="debezium.transforms.outbox.table.op.invalid.behavior=warn"
       rows="BEGIN; $(jrow $a k1 Created 1) $(jrow $a k2 Created 2) COMMIT;
             UPDATE public.outbox SET type = 'Updated' WHERE aggregateid = 'k1';
             DELETE FROM public.outbox WHERE aggregateid = 'k2';
             BEGIN; $(jrow $a k1 Paid 3) COMMIT;"
       expected=3; topics="outbox.event.$a" ;;
    11) title="table-less outbox, logical messages"
       a=c11order; messages=1
       props="debezium.source.message.prefix.include.list=outbox
debezium.transforms=decode,outbox
debezium.transforms.decode.type=io.debezium.connector.postgresql.transforms.DecodeLogicalDecodingMessageContent"
       t="SELECT pg_logical_emit_message(true, 'outbox', json_build_object('id', gen_random_uuid()::text, 'aggregatetype', '$a', 'aggregateid', '%s', 'type', '%s', 'payload', '{\"seq\": %s}')::text);"
       rows="BEGIN; $(printf "$t" k1 Created 1) $(printf "$t" k2 Created 2) COMMIT;
             BEGIN; $(printf "$t" k1 Paid 3) $(printf "$t" other 'Ignored' 9 | sed "s/'outbox'/'notoutbox'/") COMMIT;"
       expected=3; topics="outbox.event.$a" ;;
    *) return 1 ;;
  esac
}
all_cases="1 2 3 4 5 6 7 8 9 10 11"

write_props() {  # write_props FILE N
  cat >"$1" <<PROPS
debezium.sink.type=kafka
debezium.sink.kafka.producer.bootstrap.servers=$dbz_brokers
debezium.sink.kafka.producer.acks=all
debezium.sink.kafka.producer.enable.idempotence=true
debezium.sink.kafka.producer.key.serializer=org.apache.kafka.common.serialization.StringSerializer
debezium.sink.kafka.producer.value.serializer=org.apache.kafka.common.serialization.$value_serializer
debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector
debezium.source.offset.storage.file.filename=$work/case$2/debezium/offsets.dat
debezium.source.offset.flush.interval.ms=0
debezium.source.database.hostname=127.0.0.1
debezium.source.database.port=$OUTBOXD_IT_PG_PORT
debezium.source.database.user=postgres
debezium.source.database.password=postgres
debezium.source.database.dbname=$db
debezium.source.topic.prefix=dbzcmp
debezium.source.plugin.name=pgoutput
debezium.source.slot.name=dbz_case$2
debezium.source.publication.name=pub_case$2
debezium.source.publication.autocreate.mode=disabled
debezium.source.snapshot.mode=no_data
debezium.source.table.include.list=public.outbox
debezium.transforms=outbox
debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter
debezium.format.key=simplestring
debezium.format.value=simplestring
debezium.format.header.schemas.enable=false
PROPS
  [ -z "$props" ] || printf '%s\n' "$props" >>"$1"
  cat >>"$1" <<PROPS
quarkus.http.port=0
quarkus.log.console.json.enabled=false
PROPS
}

cat >"$work/compare.py" <<'PY'
import json, os, sys
from decimal import Decimal
dbz_file, obx_file, topics = sys.argv[1], sys.argv[2], sys.argv[3].split()
# Known differences a case may allow (they are then named in the result, not hidden):
#   CMP_JSON_NUMBERS=1      values that differ only in how JSON numbers are spelled (Jackson
#                           rewrites 1.50 as 1.5; outboxd keeps PostgreSQL's text)
#   CMP_PARTITIONS=SEQ:P,.. Debezium Server's Kafka sink drops the router's partition (it builds
#                           each ProducerRecord with a null partition): the partitions are not
#                           compared; instead outboxd's record with payload "seq" SEQ must be on P,
#                           and records per key are compared in id order
json_numbers = os.environ.get("CMP_JSON_NUMBERS") == "1"
partitions = dict(kv.split(":") for kv in os.environ.get("CMP_PARTITIONS", "").split(",") if kv)
known = set()
def load(path):
    recs = [json.loads(l) for l in open(path) if l.startswith("{")]
    recs.sort(key=lambda r: (r["topic"], r["partition"], r["offset"]))
    if partitions:
        recs.sort(key=lambda r: (r["topic"], [v for n, v in r["headers"] if n == "id"]))
    return recs
dbz, obx = load(dbz_file), load(obx_file)
def show(h):
    if h is None: return "null"
    b = bytes.fromhex(h)
    try:
        t = b.decode("utf-8")
        if t.isprintable(): return repr(t)
    except UnicodeDecodeError: pass
    return "0x" + h
diffs = []
for t in sorted(set(r["topic"] for r in dbz + obx)):
    if t not in topics: diffs.append(f"unexpected topic {t}")
for t in topics:
    d = [r for r in dbz if r["topic"] == t]; o = [r for r in obx if r["topic"] == t]
    if len(d) != len(o):
        diffs.append(f"{t}: debezium {len(d)} records, outboxd {len(o)}")
    keys = []
    for r in d + o:
        if r["key"] not in keys: keys.append(r["key"])
    for k in keys:
        dk = [r for r in d if r["key"] == k]; ok = [r for r in o if r["key"] == k]
        for i, (a, b) in enumerate(zip(dk, ok)):
            where = f"{t} key {show(k)} #{i+1}"
            if partitions:
                want = partitions.get(str(json.loads(bytes.fromhex(b["value"]))["seq"]))
                if str(b["partition"]) != want:
                    diffs.append(f"{where}: outboxd partition {b['partition']}, the row's column says {want}")
                elif a["partition"] != b["partition"]:
                    known.add("partitions not compared: Debezium Server's Kafka sink ignores the router's partition")
            elif a["partition"] != b["partition"]:
                diffs.append(f"{where}: partition {a['partition']} vs {b['partition']}")
            if a["value"] != b["value"]:
                same_json = False
                if json_numbers and a["value"] and b["value"]:
                    try:
                        same_json = json.loads(bytes.fromhex(a["value"]), parse_float=Decimal) == json.loads(bytes.fromhex(b["value"]), parse_float=Decimal)
                    except ValueError:
                        pass
                if same_json:
                    if not any(k.startswith("same JSON") for k in known):
                        known.add(f"same JSON, numbers spelled differently, e.g. {show(a['value'])} vs {show(b['value'])}")
                else:
                    diffs.append(f"{where}: value {show(a['value'])} vs {show(b['value'])}")
            oh = {}
            for n, v in b["headers"]: oh.setdefault(n, []).append(v)
            dh = {}
            for n, v in a["headers"]:
                if not n.startswith("__debezium."): dh.setdefault(n, []).append(v)
            for n, vs in dh.items():
                if n not in oh:
                    diffs.append(f"{where}: header {n} missing in outboxd (debezium {show(vs[0])})")
                elif n != "id" and oh[n] != vs:
                    diffs.append(f"{where}: header {n} {[show(v) for v in vs]} vs {[show(v) for v in oh[n]]}")
                elif n == "id" and len(oh[n]) != len(vs):
                    diffs.append(f"{where}: header id {len(vs)} times vs {len(oh[n])}")
        if len(dk) != len(ok):
            diffs.append(f"{t} key {show(k)}: debezium {len(dk)} records, outboxd {len(ok)}")
# The id header holds each row's own uuid, the same in both relays for the same row: compare
# them in order per key as well.
def ids(recs, t):
    out = {}
    for r in recs:
        if r["topic"] != t: continue
        for n, v in r["headers"]:
            if n == "id": out.setdefault(r["key"], []).append(v)
    return out
for t in topics:
    di, oi = ids(dbz, t), ids(obx, t)
    for k in di:
        if di[k] != oi.get(k, []):
            diffs.append(f"{t} key {show(k)}: id headers {[show(v) for v in di[k]]} vs {[show(v) for v in oi.get(k, [])]}")
if diffs:
    print("differs: " + "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else ""))
    sys.exit(1)
print("same" + (" (known differences: " + "; ".join(sorted(known)) + ")" if known else ""))
PY

run_case() {  # run_case N: prints "records|result"
  local n=$1 cdir="$work/case$n" topic_args=() t rc=0
  mkdir -p "$cdir/debezium"
  for t in $topics; do topic_args+=(--topic "$t"); done
  sql -c "DROP TABLE IF EXISTS public.outbox" \
      -c "CREATE TABLE public.outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload $payload_type $columns)" \
      -c "CREATE PUBLICATION pub_case$n FOR TABLE public.outbox" \
      -c "SELECT 1 FROM pg_create_logical_replication_slot('dbz_case$n', 'pgoutput')" \
      -c "SELECT 1 FROM pg_create_logical_replication_slot('obx_case$n', 'pgoutput')" >/dev/null
  write_props "$cdir/application.properties" "$n"
  "$build/outboxd" --from-debezium "$cdir/application.properties" >"$cdir/converted.yaml" 2>"$cdir/convert.err" \
    || { echo "0|differs: outboxd --from-debezium failed: $(head -c 300 "$cdir/convert.err")"; return 1; }
  # The patch: outboxd's own slot, and the second broker (the topics stay the configuration's).
  sed -e "s/^    slot: outboxd\$/    slot: obx_case$n/" \
      -e "s/^    brokers: \"$dbz_brokers\"\$/    brokers: \"$obx_brokers\"/" "$cdir/converted.yaml" >"$cdir/outboxd.yaml"
  diff -u "$cdir/converted.yaml" "$cdir/outboxd.yaml" | grep '^[-+] ' | sed 's/^/    patch: /' >&2 || true
  printf '%s\n' "$rows" | sql >/dev/null
  dbz_pid=$(DBZ_WORK_DIR="$cdir/debezium" DBZ_PROPERTIES_FILE="$cdir/application.properties" \
            DEBEZIUM_JAVA_HOME="${java%/bin/java}" "$root/bench/debezium/run.sh")
  "$build/outboxd" --config "$cdir/outboxd.yaml" >"$cdir/outboxd.log" 2>&1 &
  obx_pid=$!
  # Debezium's records, waited for while its JVM runs: one that exits (a Java too old, a
  # configuration it refuses) ends the wait at once, with its log's end, instead of after 300 s.
  "$build/outboxd-consume" --brokers "$dbz_brokers" "${topic_args[@]}" --format count --count "$expected" \
      --timeout-ms 300000 >/dev/null 2>"$cdir/wait-dbz.err" &
  local wait_pid=$!
  while kill -0 "$wait_pid" 2>/dev/null; do
    if ! kill -0 "$dbz_pid" 2>/dev/null; then
      sleep 1
      kill "$wait_pid" 2>/dev/null || true
      echo "case $n: Debezium Server exited before its records came; the end of $cdir/debezium/debezium.log:" >&2
      tail -n 20 "$cdir/debezium/debezium.log" >&2 || true
      break
    fi
    sleep 0.5
  done
  wait "$wait_pid" || rc=1
  "$build/outboxd-consume" --brokers "$obx_brokers" "${topic_args[@]}" --format count --count "$expected" \
      --timeout-ms 60000 >/dev/null 2>"$cdir/wait-obx.err" || rc=1
  # A moment for anything beyond the expected records, then both stop and every record is read.
  sleep 3
  kill "$dbz_pid" "$obx_pid" 2>/dev/null || true
  wait "$obx_pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$dbz_pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$dbz_pid" 2>/dev/null || true
  dbz_pid= obx_pid=
  "$build/outboxd-consume" --brokers "$dbz_brokers" "${topic_args[@]}" --format records --idle-ms 3000 \
      --timeout-ms 30000 >"$cdir/debezium.records" 2>/dev/null || true
  "$build/outboxd-consume" --brokers "$obx_brokers" "${topic_args[@]}" --format records --idle-ms 3000 \
      --timeout-ms 30000 >"$cdir/outboxd.records" 2>/dev/null || true
  local nd no result
  nd=$(grep -c '^{' "$cdir/debezium.records" || true); no=$(grep -c '^{' "$cdir/outboxd.records" || true)
  result=$(CMP_JSON_NUMBERS=$CMP_JSON_NUMBERS CMP_PARTITIONS=$CMP_PARTITIONS python3 "$work/compare.py" "$cdir/debezium.records" "$cdir/outboxd.records" "$topics") || rc=1
  if [ "$nd" != "$expected" ]; then result="differs: debezium sent $nd of $expected expected records; $result"; rc=1; fi
  echo "$nd/$no|$result"
  return $rc
}

started=$(date +%s)
failed=0
table=()
for n in $all_cases; do
  [ -z "$only" ] || [[ "$only" == *",$n,"* ]] || continue
  case_def "$n"
  echo "case $n: $title" >&2
  line=$(run_case "$n") || failed=1
  table+=("| $n. $title | ${line%%|*} | ${line#*|} |")
  echo "  ${line#*|}" >&2
done
echo
echo "Debezium Server $(debezium_version) ($("$java" -version 2>&1 | head -n 1)), outboxd $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), PostgreSQL $OUTBOXD_IT_PG_VERSION, $(date -u +%Y-%m-%d), $(( $(date +%s) - started ))s"
echo "| case | records (debezium/outboxd) | result |"
echo "|---|---|---|"
printf '%s\n' "${table[@]}"
echo "work folder: $work"
exit $failed
