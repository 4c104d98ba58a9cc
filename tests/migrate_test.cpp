// outboxd --from-debezium: Debezium connector configurations in, outboxd YAML out; every output
// must load with outboxd's own configuration loader.

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "config/config.h"
#include "migrate/debezium.h"

using namespace outboxd;
using Catch::Contains;

namespace {

config::Config load(const migrate::Conversion& c) {
    auto env = [](std::string_view name) -> std::optional<std::string> {
        if (name == "OUTBOXD_PG_PASSWORD") return "pg-secret";
        if (name == "OUTBOXD_KAFKA_SASL_PASSWORD") return "kafka-secret";
        if (name == "OUTBOXD_KAFKA_BROKERS") return "kafka:9092";
        if (name == "PG_PASSWORD") return "from-env";
        return std::nullopt;
    };
    auto parsed = config::parseConfig(c.yaml, "converted.yaml", env);
    if (!parsed) {
        std::string all;
        for (const auto& e : parsed.error()) all += e.toString() + "\n";
        FAIL("the converted YAML does not load:\n" << all << "\n" << c.yaml);
    }
    return *parsed;
}

migrate::Conversion convert(std::string_view text) {
    auto c = migrate::fromDebezium(text, "dbz.conf");
    if (!c) FAIL(c.error());
    return *c;
}

bool hasNote(const migrate::Conversion& c, std::string_view text) {
    for (const auto& n : c.notes) {
        if (n.find(text) != std::string::npos) return true;
    }
    return false;
}

constexpr std::string_view kConnectDefaults = R"({
  "name": "outbox-connector",
  "config": {
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "tasks.max": "1",
    "database.hostname": "db",
    "database.port": 5432,
    "database.user": "debezium",
    "database.password": "dbz-secret",
    "database.dbname": "auth",
    "topic.prefix": "auth",
    "plugin.name": "pgoutput",
    "table.include.list": "public.outbox",
    "transforms": "outbox",
    "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
    "value.converter": "org.apache.kafka.connect.storage.StringConverter"
  }
})";

}  // namespace

TEST_CASE("Debezium's basic outbox configuration (Kafka Connect JSON) becomes outboxd's defaults in payload mode", "[migrate]") {
    const auto c = convert(kConnectDefaults);
    const auto config = load(c);
    CHECK(config.postgres.dsn == "host=db port=5432 dbname=auth user=debezium password=pg-secret");
    CHECK(config.postgres.slot == "outboxd");
    CHECK(config.postgres.publication == "dbz_publication");
    REQUIRE(config.outbox.tables.size() == 1);
    CHECK(config.outbox.tables[0].schema == "public");
    CHECK(config.outbox.tables[0].name == "outbox");
    CHECK(config.outbox.columns.id == "id");
    CHECK(config.outbox.columns.aggregate_type == "aggregatetype");
    CHECK(config.outbox.columns.aggregate_id == "aggregateid");
    CHECK(config.outbox.columns.payload == "payload");
    CHECK(config.routing.topic.source == "outbox.event.{aggregatetype}");
    CHECK(config.routing.topic_regex.empty());
    CHECK(config.routing.key.source == "{aggregateid}");
    CHECK(config.routing.value == config::ValueMode::Payload);
    CHECK(config.kafka.brokers == "kafka:9092");
    CHECK_THAT(c.yaml, Contains("brokers: \"${OUTBOXD_KAFKA_BROKERS}\""));
    CHECK_THAT(c.yaml, !Contains("dbz-secret"));
    CHECK(hasNote(c, "database.password: not copied"));
    CHECK(hasNote(c, "slot.name=debezium: outboxd needs a slot of its own"));
    CHECK(hasNote(c, "topic.prefix=auth"));
    CHECK(hasNote(c, "tasks.max=1"));
    CHECK_FALSE(hasNote(c, "value.converter"));
    for (const auto& n : c.notes) CHECK_THAT(c.yaml, Contains("#   - " + n));
}

TEST_CASE("the bare config map and a Connect .properties file convert as the wrapped JSON does", "[migrate]") {
    const auto bare = convert(R"({"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "db", "database.dbname": "auth", "transforms": "outbox",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter"})");
    CHECK(load(bare).postgres.dsn == "host=db dbname=auth");
    const auto props = convert("connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
                               "database.hostname = db\ndatabase.dbname: auth\ntransforms=outbox\n"
                               "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n");
    CHECK(load(props).postgres.dsn == "host=db dbname=auth");
}

TEST_CASE("every Outbox Event Router column option and the documented additional placements carry over", "[migrate]") {
    const auto c = convert(R"({"name": "x", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "db", "database.dbname": "auth",
        "table.include.list": "app.Outbox,public\\.events",
        "transforms": "outbox",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.table.field.event.id": "event_id",
        "transforms.outbox.table.field.event.key": "AggregateId",
        "transforms.outbox.table.field.event.type": "event_type",
        "transforms.outbox.table.field.event.payload": "body",
        "transforms.outbox.table.field.event.timestamp": "created_at",
        "transforms.outbox.route.by.field": "kind",
        "transforms.outbox.route.tombstone.on.empty.payload": "true",
        "transforms.outbox.table.op.invalid.behavior": "fatal",
        "transforms.outbox.table.expand.json.payload": "true",
        "transforms.outbox.table.fields.additional.placement": "eventType:header:type,eventType:envelope:type,partitionColumn:partition,traceparent:HEADER",
        "transforms.outbox.table.field.event.schema.version": "version",
        "value.converter": "io.debezium.converters.BinaryDataConverter"}})");
    const auto config = load(c);
    REQUIRE(config.outbox.tables.size() == 2);
    CHECK(config.outbox.tables[0].schema == "app");
    CHECK(config.outbox.tables[0].name == "Outbox");
    CHECK(config.outbox.tables[1].name == "events");
    CHECK(config.outbox.columns.id == "event_id");
    CHECK(config.outbox.columns.aggregate_id == "AggregateId");
    CHECK(config.outbox.columns.aggregate_type == "kind");
    CHECK(config.outbox.columns.type == "event_type");
    CHECK(config.outbox.columns.payload == "body");
    CHECK(config.outbox.columns.timestamp == "created_at");
    CHECK(config.routing.topic.source == "outbox.event.{kind}");
    CHECK(config.routing.key.source == "{\"AggregateId\"}");
    CHECK(config.routing.tombstone_on_empty_payload);
    CHECK(config.routing.on_update == config::OnUpdate::Fatal);
    CHECK_THAT(c.yaml, Contains("  expand_json_payload: true\n"));
    CHECK_THAT(c.yaml, Contains("  additional_fields:\n"
                                "    - {column: \"\\\"eventType\\\"\", placement: header, as: \"type\"}\n"
                                "    - {column: \"\\\"eventType\\\"\", placement: envelope, as: \"type\"}\n"
                                "    - {column: \"\\\"partitionColumn\\\"\", placement: partition, as: \"partitionColumn\"}\n"
                                "    - {column: \"traceparent\", placement: header, as: \"traceparent\"}\n"));
    CHECK(config.routing.expand_json_payload);
    CHECK(config.routing.value == config::ValueMode::Payload);
    REQUIRE(config.routing.additional_fields.size() == 4);
    CHECK(config.routing.additional_fields[0].column == "eventType");
    CHECK(config.routing.additional_fields[0].placement == config::Placement::Header);
    CHECK(config.routing.additional_fields[0].alias == "type");
    CHECK(config.routing.additional_fields[1].placement == config::Placement::Envelope);
    CHECK(config.routing.additional_fields[2].column == "partitionColumn");
    CHECK(config.routing.additional_fields[2].placement == config::Placement::Partition);
    CHECK(config.routing.additional_fields[3].alias == "traceparent");
    CHECK(hasNote(c, "table.field.event.schema.version=version"));
    CHECK(hasNote(c, "an envelope placement"));
    CHECK(hasNote(c, "table.field.event.timestamp=created_at"));
}

TEST_CASE("route.topic.regex and route.topic.replacement: simple forms become a column template, others a topic_regex", "[migrate][regex]") {
    auto routed = [](std::string_view regex, std::string_view replacement) {
        std::string text = "connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
                           "database.hostname=db\ntransforms=outbox\n"
                           "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n";
        if (!regex.empty()) text += "transforms.outbox.route.topic.regex=" + std::string(regex) + "\n";
        text += "transforms.outbox.route.topic.replacement=" + std::string(replacement) + "\n";
        return load(convert(text)).routing;
    };
    auto r = routed("", "${routedByValue}.events");
    CHECK(r.topic.source == "{aggregatetype}.events");
    CHECK(r.topic_regex.empty());
    r = routed("(.*)", "events-$1");
    CHECK(r.topic.source == "events-{aggregatetype}");
    CHECK(r.topic_regex.empty());
    r = routed("", "all-events");
    CHECK(r.topic.source == "all-events");
    r = routed("(?<service>[a-z]+)\\\\.(?<entity>.+)", "${service}-events.${entity}");
    CHECK(r.topic_regex == "(?<service>[a-z]+)\\.(?<entity>.+)");
    CHECK(r.topic.source == "{$service}-events.{$entity}");
    r = routed("(?i)(?<routedByValue>.*)", "outbox.event.${routedByValue}");
    CHECK(r.topic_regex == "(?i)(?<routedByValue>.*)");
    CHECK(r.topic.source == "outbox.event.{$routedByValue}");
    r = routed("([a-z]+)_(v[0-9]+)", "$2.$1\\\\.x");
    CHECK(r.topic.source == "{$2}.{$1}.x");
}

TEST_CASE("a route replacement whose text Kafka would refuse as a topic name is a note", "[migrate][regex]") {
    const auto c = convert("connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
                           "database.hostname=db\ntransforms=outbox\n"
                           "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n"
                           "transforms.outbox.route.topic.replacement=events/${routedByValue}\n");
    CHECK(load(c).routing.topic.source == "outbox.event.{aggregatetype}");
    CHECK(hasNote(c, "ROUTING NOT CARRIED OVER: route.topic.replacement=events/${routedByValue}"));
}

TEST_CASE("a route replacement that Java would refuse is a note, not a wrong topic in silence", "[migrate][regex]") {
    const auto c = convert("connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
                           "database.hostname=db\ntransforms=outbox\n"
                           "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n"
                           "transforms.outbox.route.topic.regex=(a)\n"
                           "transforms.outbox.route.topic.replacement=t.$2\n");
    load(c);
    CHECK(hasNote(c, "ROUTING NOT CARRIED OVER: route.topic.replacement=t.$2: '$2' names no group"));
}

TEST_CASE("Java replacement syntax: $n takes the longest group number that exists, \\ escapes, braces are doubled", "[migrate][regex]") {
    auto upTo = [](int groups) { return [groups](int n) { return n >= 0 && n <= groups; }; };
    CHECK(migrate::javaReplacementToTemplate("$12", upTo(12)).value() == "{$12}");
    CHECK(migrate::javaReplacementToTemplate("$12", upTo(1)).value() == "{$1}2");
    CHECK(migrate::javaReplacementToTemplate("a{b}\\$c", upTo(0)).value() == "a{{b}}$c");
    CHECK_FALSE(migrate::javaReplacementToTemplate("$x", upTo(1)));
    CHECK_FALSE(migrate::javaReplacementToTemplate("${1a}", upTo(1)));
    CHECK_FALSE(migrate::javaReplacementToTemplate("end\\", upTo(1)));
}

TEST_CASE("a Debezium Server application.properties with SASL, JSON headers and logical messages", "[migrate]") {
    const auto c = convert(R"(# Debezium Server
debezium.sink.type=kafka
debezium.sink.kafka.producer.bootstrap.servers=broker-1:9093,broker-2:9093
debezium.sink.kafka.producer.key.serializer=org.apache.kafka.common.serialization.StringSerializer
debezium.sink.kafka.producer.value.serializer=org.apache.kafka.common.serialization.StringSerializer
debezium.sink.kafka.producer.security.protocol=SASL_SSL
debezium.sink.kafka.producer.sasl.mechanism=SCRAM-SHA-512
debezium.sink.kafka.producer.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    username="relay" password="kafka-pw";
debezium.sink.kafka.producer.ssl.truststore.location=/etc/kafka/truststore.jks
debezium.sink.kafka.producer.compression.type=zstd
debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector
debezium.source.offset.storage.file.filename=data/offsets.dat
debezium.source.database.hostname=db.internal
debezium.source.database.port=5432
debezium.source.database.user=debezium
debezium.source.database.password=${PG_PASSWORD}
debezium.source.database.dbname=auth
debezium.source.database.sslmode=verify-full
debezium.source.topic.prefix=auth
debezium.source.slot.name=dbz_outbox
debezium.source.slot.failover=true
debezium.source.publication.name=outbox_pub
debezium.source.publication.autocreate.mode=filtered
debezium.source.plugin.name=pgoutput
debezium.source.table.include.list=public.outbox
debezium.source.message.prefix.include.list=outbox
debezium.source.snapshot.mode=never
debezium.transforms=decode,outbox
debezium.transforms.decode.type=io.debezium.connector.postgresql.transforms.DecodeLogicalDecodingMessageContent
debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter
debezium.transforms.outbox.table.fields.additional.placement=tracingspancontext:header:traceparent
debezium.format.value=simplestring
debezium.format.header=json
quarkus.log.level=INFO
)");
    const auto config = load(c);
    CHECK(config.postgres.dsn == "host=db.internal port=5432 dbname=auth user=debezium sslmode=verify-full password=from-env");
    CHECK_THAT(c.yaml, Contains("password=${PG_PASSWORD}"));
    CHECK(config.postgres.publication == "outbox_pub");
    CHECK(config.postgres.create_publication);
    CHECK(config.postgres.failover);
    REQUIRE(config.outbox.messages.prefixes.size() == 1);
    CHECK(config.outbox.messages.prefixes[0] == "outbox");
    CHECK(config.kafka.brokers == "broker-1:9093,broker-2:9093");
    CHECK(config.kafka.properties.at("security.protocol") == "SASL_SSL");
    CHECK(config.kafka.properties.at("sasl.mechanism") == "SCRAM-SHA-512");
    CHECK(config.kafka.properties.at("sasl.username") == "relay");
    CHECK(config.kafka.properties.at("sasl.password") == "kafka-secret");
    CHECK(config.kafka.properties.at("compression.type") == "zstd");
    CHECK_THAT(c.yaml, !Contains("kafka-pw"));
    CHECK_THAT(c.yaml, Contains("  header_encoding: json\n"));
    CHECK_THAT(c.yaml, Contains("    - {column: \"tracingspancontext\", placement: header, as: \"traceparent\"}\n"));
    CHECK(config.routing.header_encoding == config::HeaderEncoding::Json);
    REQUIRE(config.routing.additional_fields.size() == 1);
    CHECK(config.routing.additional_fields[0].column == "tracingspancontext");
    CHECK(config.routing.additional_fields[0].alias == "traceparent");
    CHECK(hasNote(c, "slot.name=dbz_outbox"));
    CHECK(hasNote(c, "ssl.truststore.location=/etc/kafka/truststore.jks: librdkafka reads PEM"));
    CHECK(hasNote(c, "key.serializer"));
    CHECK(hasNote(c, "debezium.source.offset.storage.file.filename=data/offsets.dat"));
    CHECK(hasNote(c, "debezium.source.snapshot.mode=never: outboxd takes no snapshot"));
    CHECK(hasNote(c, "quarkus.log.level=INFO"));
    CHECK_FALSE(hasNote(c, "debezium.format.value"));
}

TEST_CASE("Debezium Server's header format defaults to json: header_encoding json, and a note on its schema wrapper", "[migrate]") {
    // integration-tests/debezium-compare.sh, case "defaults": Debezium Server 3.6.1 without any
    // debezium.format.header wrote the id header as {"schema":{...},"payload":"<uuid>"}, and with
    // debezium.format.header.schemas.enable=false as "<uuid>" with the quotes.
    constexpr std::string_view kServer = R"(debezium.sink.type=kafka
debezium.sink.kafka.producer.bootstrap.servers=broker:9092
debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector
debezium.source.database.hostname=db
debezium.source.database.dbname=app
debezium.source.table.include.list=public.outbox
debezium.transforms=outbox
debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter
debezium.format.value=simplestring
)";
    {
        const auto c = convert(kServer);
        CHECK_THAT(c.yaml, Contains("  header_encoding: json\n"));
        CHECK(load(c).routing.header_encoding == config::HeaderEncoding::Json);
        CHECK(hasNote(c, "debezium.format.header.schemas.enable is not false"));
    }
    {
        const auto c = convert(std::string(kServer) + "debezium.format.header.schemas.enable=false\n");
        CHECK(load(c).routing.header_encoding == config::HeaderEncoding::Json);
        CHECK_FALSE(hasNote(c, "schemas.enable"));
    }
    {
        const auto c = convert(std::string(kServer) + "debezium.format.header=simplestring\n");
        CHECK(load(c).routing.header_encoding == config::HeaderEncoding::Bare);
        CHECK(hasNote(c, "debezium.format.header=simplestring"));
    }
}

TEST_CASE("options outboxd cannot carry over are notes with secrets hidden", "[migrate]") {
    const auto c = convert(R"({"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "db", "table.include.list": "public\\.outbox_.*",
        "plugin.name": "decoderbufs",
        "transforms": "route,outbox", "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.predicate": "isOutbox",
        "transforms.outbox.table.op.invalid.behavior": "explode",
        "producer.override.ssl.key.password": "hunter2",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter"})");
    const auto config = load(c);
    CHECK(config.routing.on_update == config::OnUpdate::Warn);
    CHECK(hasNote(c, "table.include.list entry 'public\\.outbox_.*' is a pattern"));
    CHECK(hasNote(c, "plugin.name=decoderbufs"));
    CHECK(hasNote(c, "transforms 'route' (type org.apache.kafka.connect.transforms.RegexRouter)"));
    CHECK(hasNote(c, "transforms.outbox.predicate=isOutbox"));
    CHECK(hasNote(c, "table.op.invalid.behavior=explode"));
    CHECK(hasNote(c, "value.converter=org.apache.kafka.connect.json.JsonConverter"));
    CHECK(hasNote(c, "producer.override.ssl.key.password=(a secret, not copied)"));
    CHECK_THAT(c.yaml, !Contains("hunter2"));
}

TEST_CASE("a file that is not a Debezium PostgreSQL outbox configuration is refused with the reason", "[migrate]") {
    auto refused = [](std::string_view text) {
        auto c = migrate::fromDebezium(text, "x");
        REQUIRE_FALSE(c);
        return c.error();
    };
    CHECK_THAT(refused(""), Contains("it is empty"));
    CHECK_THAT(refused("{\"name\": "), Contains("not valid JSON"));
    CHECK_THAT(refused("[1, 2]"), Contains("no connector.class"));
    CHECK_THAT(refused("source:\n  postgres:\n    dsn: x\n"), Contains("no connector.class"));
    CHECK_THAT(refused(R"({"connector.class": "io.debezium.connector.mysql.MySqlConnector", "transforms": "o",
                          "transforms.o.type": "io.debezium.transforms.outbox.EventRouter"})"),
               Contains("'io.debezium.connector.mysql.MySqlConnector', not the Debezium PostgreSQL connector"));
    CHECK_THAT(refused(R"({"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "database.hostname": "db"})"),
               Contains("no Outbox Event Router"));
    CHECK_THAT(refused("debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
                       "debezium.source.database.hostname=db\n"),
               Contains("debezium.transforms lists no transform"));
}

TEST_CASE("Java .properties: continuations, separators, escapes and comments", "[migrate]") {
    auto p = migrate::parseProperties("# c\n! c\na=1\nb : 2\nc 3\nd=x\\\n   y\ne=\\u00e9\\t\\\\\nf\\:g=h\na=last\n");
    REQUIRE(p);
    std::map<std::string, std::string> m(p->begin(), p->end());
    CHECK(m.at("a") == "last");
    CHECK(m.at("b") == "2");
    CHECK(m.at("c") == "3");
    CHECK(m.at("d") == "xy");
    CHECK(m.at("e") == "\xc3\xa9\t\\");
    CHECK(m.at("f:g") == "h");
    CHECK(m.size() == 6);
}
