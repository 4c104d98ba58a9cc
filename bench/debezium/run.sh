#!/usr/bin/env bash
# Starts Debezium Server (PostgreSQL connector + Outbox Event Router SMT + Kafka sink) in the
# background on an existing pgoutput slot and publication, streaming only what the slot holds (no
# snapshot). Writes WORK_DIR/config/application.properties, logs to WORK_DIR/debezium.log, keeps
# offsets in WORK_DIR/offsets.dat, and prints the Java process id on stdout.
#
# Environment (defaults in brackets):
#   DBZ_WORK_DIR         work folder (required; created)
#   DBZ_PG_HOST [127.0.0.1]  DBZ_PG_PORT [5432]  DBZ_PG_DB [postgres]
#   DBZ_PG_USER [postgres]   DBZ_PG_PASSWORD [postgres]
#   DBZ_SLOT [debezium]      DBZ_PUBLICATION [outbox]   DBZ_TABLE [public.outbox]
#   DBZ_KAFKA_BROKERS        bootstrap servers (required)
#   DBZ_TOPIC_PREFIX [outbox.event.]  topic = prefix + the row's aggregatetype
#   DBZ_HTTP_PORT [0]        Quarkus HTTP (health) port; 0 picks a free one
#   DBZ_JAVA_OPTS []         extra JVM options (the default heap is the JVM's own)
#   DBZ_PROPERTIES_FILE []   an application.properties to use as it is instead of the one below
#                            (integration-tests/debezium-compare.sh writes one per case); the
#                            DBZ_PG_*, DBZ_SLOT, DBZ_PUBLICATION, DBZ_TABLE, DBZ_TOPIC_PREFIX and
#                            DBZ_KAFKA_BROKERS settings then do not apply
#   DEBEZIUM_JAVA_HOME       a JDK 21+ (else $JAVA_HOME or the newest under /usr/lib/jvm)
#   bench/debezium/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

work=${DBZ_WORK_DIR:?set DBZ_WORK_DIR}
if [ -n "${DBZ_PROPERTIES_FILE:-}" ]; then
  [ -f "$DBZ_PROPERTIES_FILE" ] || { echo "DBZ_PROPERTIES_FILE=$DBZ_PROPERTIES_FILE: no such file" >&2; exit 1; }
  brokers=
else
  brokers=${DBZ_KAFKA_BROKERS:?set DBZ_KAFKA_BROKERS}
fi
dist=$("$here/fetch.sh")
java=$(debezium_java)
mkdir -p "$work/config"
work=$(cd "$work" && pwd)

# Key names: Debezium Server (debezium.source.*, debezium.sink.kafka.producer.*, debezium.format.*,
# debezium.transforms.*), the PostgreSQL connector (plugin.name, slot.name, publication.name,
# publication.autocreate.mode, snapshot.mode) and the Outbox Event Router
# (https://debezium.io/documentation/reference/stable/transformations/outbox-event-router.html).
if [ -n "${DBZ_PROPERTIES_FILE:-}" ]; then
  cp "$DBZ_PROPERTIES_FILE" "$work/config/application.properties"
else
cat >"$work/config/application.properties" <<PROPS
debezium.sink.type=kafka
debezium.sink.kafka.producer.bootstrap.servers=$brokers
debezium.sink.kafka.producer.acks=all
debezium.sink.kafka.producer.enable.idempotence=true
debezium.sink.kafka.producer.key.serializer=org.apache.kafka.common.serialization.StringSerializer
debezium.sink.kafka.producer.value.serializer=org.apache.kafka.common.serialization.StringSerializer

debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector
debezium.source.offset.storage.file.filename=$work/offsets.dat
debezium.source.offset.flush.interval.ms=0
debezium.source.database.hostname=${DBZ_PG_HOST:-127.0.0.1}
debezium.source.database.port=${DBZ_PG_PORT:-5432}
debezium.source.database.user=${DBZ_PG_USER:-postgres}
debezium.source.database.password=${DBZ_PG_PASSWORD:-postgres}
debezium.source.database.dbname=${DBZ_PG_DB:-postgres}
debezium.source.topic.prefix=debezium
debezium.source.plugin.name=pgoutput
debezium.source.slot.name=${DBZ_SLOT:-debezium}
debezium.source.publication.name=${DBZ_PUBLICATION:-outbox}
debezium.source.publication.autocreate.mode=disabled
debezium.source.snapshot.mode=no_data
debezium.source.table.include.list=${DBZ_TABLE:-public.outbox}

# The outbox columns are Debezium's defaults (id, aggregatetype, aggregateid, type, payload).
# Key = aggregateid and value = the payload column, both as plain strings, so a record carries the
# same key and topic as outboxd's; the event type goes into a "type" header as in outboxd.
# \$1 is the router's default capture group (?<routedByValue>.*): written this way because
# Debezium Server's configuration would expand a \${...} expression itself.
debezium.transforms=outbox
debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter
debezium.transforms.outbox.route.by.field=aggregatetype
debezium.transforms.outbox.route.topic.replacement=${DBZ_TOPIC_PREFIX:-outbox.event.}\$1
debezium.transforms.outbox.table.field.event.key=aggregateid
debezium.transforms.outbox.table.fields.additional.placement=type:header:type
debezium.format.key=simplestring
debezium.format.value=simplestring
debezium.format.header.schemas.enable=false

quarkus.http.port=${DBZ_HTTP_PORT:-0}
quarkus.log.console.json.enabled=false
PROPS
fi

# Debezium Server reads config/application.properties from its working folder. The runner jar's
# manifest asks for java.lang to be opened, which only -jar would honour: on Java 24 and later
# Quarkus' worker threads fail without it.
cd "$work"
# shellcheck disable=SC2086
nohup "$java" --add-opens java.base/java.lang=ALL-UNNAMED ${DBZ_JAVA_OPTS:-} -cp "$dist/$(cd "$dist" && ls debezium-server-dist-*-runner.jar):$dist/config/lib:$dist/lib/*" \
  io.debezium.server.Main >"$work/debezium.log" 2>&1 </dev/null &
echo $!
