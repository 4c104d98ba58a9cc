// Issue 8's configuration checks: producer properties that would break per-key order or make
// every send fail, broker addresses, and ${ENV} values that could add options to a DSN.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <string>

#include "config/config.h"

using namespace outboxd::config;

namespace {

EnvLookup fakeEnv(std::map<std::string, std::string> vars = {}) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        const auto it = vars.find(std::string(name));
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

// Line 6 is "    brokers: ...", line 7 "    properties:" and properties start at line 8.
std::string withKafka(std::string_view brokers, std::string_view properties = "") {
    std::string yaml = "source:\n  postgres:\n    dsn: \"host=db dbname=auth\"\nsink:\n  kafka:\n";
    yaml += fmt::format("    brokers: {}\n", brokers);
    if (!properties.empty()) {
        yaml += "    properties:\n" + std::string(properties);
    }
    return yaml;
}

ConfigError onlyError(const std::string& yaml, const EnvLookup& env = fakeEnv()) {
    const auto r = parseConfig(yaml, "t.yaml", env);
    REQUIRE_FALSE(r.has_value());
    for (const auto& e : r.error()) UNSCOPED_INFO(e.toString());
    REQUIRE(r.error().size() == 1);
    return r.error().front();
}

Config parseOk(const std::string& yaml, const EnvLookup& env = fakeEnv()) {
    auto r = parseConfig(yaml, "t.yaml", env);
    if (!r) {
        for (const auto& e : r.error()) UNSCOPED_INFO(e.toString());
    }
    REQUIRE(r.has_value());
    return *r;
}

}  // namespace

TEST_CASE("a partitioner that does not map a key to one partition is refused, naming the accepted ones",
          "[config][rules]") {
    const auto e = onlyError(withKafka("k:9092", "      partitioner: random\n"));
    CHECK((e.line == 8 && e.column == 20));
    CHECK_THAT(e.message, Catch::Contains("sink.kafka.properties.partitioner: 'random'"));
    CHECK_THAT(e.message, Catch::Contains("murmur2_random, murmur2, consistent_random, consistent, fnv1a_random, "
                                          "fnv1a"));
    // librdkafka's names are case-sensitive; outboxd refuses what librdkafka would.
    CHECK_THAT(onlyError(withKafka("k:9092", "      partitioner: Murmur2\n")).message,
               Catch::Contains("'Murmur2'"));
    for (const auto name : keyedPartitioners()) {
        INFO(name);
        const Config c = parseOk(withKafka("k:9092", fmt::format("      partitioner: {}\n", name)));
        CHECK(c.kafka.properties.at("partitioner") == name);
    }
}

TEST_CASE("transactional.id is refused: outboxd sets it in exactly-once mode", "[config][rules]") {
    const auto e = onlyError(withKafka("k:9092", "      transactional.id: outboxd-1\n"));
    CHECK((e.line == 8 && e.column == 7));
    CHECK_THAT(e.message, Catch::Contains("sink.kafka.properties.transactional.id: outboxd sets the "
                                          "transactional id itself"));
    CHECK_THAT(e.message, Catch::Contains("sink.kafka.delivery: exactly-once"));
    CHECK_THAT(e.message, Catch::Contains("remove this property"));
}

TEST_CASE("the reader and the sink share the delivery rules", "[config][rules]") {
    // librdkafka reads "True" as true: accepted by both (the sink refused it before).
    CHECK_FALSE(checkProducerProperty("enable.idempotence", "True").has_value());
    CHECK(parseOk(withKafka("k:9092", "      enable.idempotence: \"True\"\n")).kafka.properties.at(
              "enable.idempotence") == "True");
    CHECK_FALSE(checkProducerProperty("acks", "ALL").has_value());
    CHECK(checkProducerProperty("acks", "1").has_value());
    // The sink refused this at start; the reader did not.
    const auto e = onlyError(withKafka("k:9092", "      delivery.report.only.error: true\n"));
    CHECK((e.line == 8 && e.column == 35));
    CHECK_THAT(e.message, Catch::Contains("delivery.report.only.error: must stay false"));
    CHECK_FALSE(checkProducerProperty("delivery.report.only.error", "false").has_value());
    CHECK(checkProducerProperty("bootstrap.servers", "x:1")->at_key);
}

TEST_CASE("sink.kafka.brokers is a list of host:port with a port from 1 to 65535", "[config][rules]") {
    const auto e = onlyError(withKafka("kafka:99999"));
    CHECK(e.toString() == "t.yaml:6:14: sink.kafka.brokers: 'kafka:99999': the port must be a number from 1 "
                          "to 65535");
    CHECK_THAT(onlyError(withKafka("\"k1:9092, kafka:0\"")).message, Catch::Contains("'kafka:0': the port"));
    CHECK_THAT(onlyError(withKafka("kafka")).message, Catch::Contains("'kafka': give the port too"));
    CHECK_THAT(onlyError(withKafka("\"kafka:\"")).message, Catch::Contains("the port must be"));
    CHECK_THAT(onlyError(withKafka("\"kafka:90x2\"")).message, Catch::Contains("the port must be"));
    CHECK_THAT(onlyError(withKafka("\"::1:9092\"")).message, Catch::Contains("IPv6 address in brackets"));
    CHECK_THAT(onlyError(withKafka("\"ftp://k:9092\"")).message, Catch::Contains("prefix before '://'"));
    CHECK_THAT(onlyError(withKafka("\"k 1:9092\"")).message, Catch::Contains("the host must be"));
    CHECK_THAT(onlyError(withKafka("\"k1:9092,\"")).message, Catch::Contains("without empty entries"));
    for (const auto* ok : {"k:1", "k:65535", "\"k1:9092, k2:9093\"", "\"[::1]:9092\"", "\"SASL_SSL://k:9093\"",
                           "\"10.0.0.1:9092\""}) {
        INFO(ok);
        CHECK_FALSE(checkBrokers(parseOk(withKafka(ok)).kafka.brokers).has_value());
    }
}

TEST_CASE("an expanded ${ENV} value cannot add options to a key=value DSN", "[config][rules]") {
    const EnvLookup env = fakeEnv({{"PGPASSWORD", "x dbname=postgres"},
                                   {"QUOTE", "it's \\ here"},
                                   {"EMPTY", ""},
                                   {"HOST", "db"}});
    CHECK(*expandDsn("host=h dbname=auth password=${PGPASSWORD}", env) ==
          "host=h dbname=auth password=x\\ dbname=postgres");
    CHECK(*expandDsn("password='${PGPASSWORD}' dbname=auth", env) == "password='x dbname=postgres' dbname=auth");
    CHECK(*expandDsn("password='${QUOTE}'", env) == "password='it\\'s \\\\ here'");
    CHECK(*expandDsn("password=${QUOTE}", env) == "password=it\\'s\\ \\\\\\ here");
    CHECK(*expandDsn("password=${EMPTY} dbname=auth", env) == "password='' dbname=auth");
    CHECK(*expandDsn("password = ${EMPTY}", env) == "password = ");
    CHECK(*expandDsn("password = ${EMPTY}\tdbname=auth", env) == "password = ''\tdbname=auth");
    CHECK(*expandDsn("host=${HOST}.example.com", env) == "host=db.example.com");
    CHECK(*expandDsn("application_name=a${EMPTY}b", env) == "application_name=ab");
    // A URI is expanded as written (percent-encoding is the writer's job there).
    CHECK(*expandDsn("postgresql://u@${HOST}/auth", env) == "postgresql://u@db/auth");
    CHECK_FALSE(expandDsn("password=${UNSET}", env).has_value());

    const Config c = parseOk("source:\n  postgres:\n    dsn: \"host=h dbname=auth password=${PGPASSWORD}\"\n"
                             "sink:\n  kafka:\n    brokers: k:9092\n",
                             env);
    CHECK(c.postgres.dsn == "host=h dbname=auth password=x\\ dbname=postgres");
}

TEST_CASE("the parsed configuration knows where each value is, for later checks", "[config][rules]") {
    const Config c = parseOk(withKafka("k:9092", "      linger.ms: 5\n"));
    CHECK(c.errorAt("source.postgres.dsn", "bad").toString() == "t.yaml:3:10: bad");
    CHECK(c.errorAt("sink.kafka.brokers", "bad").toString() == "t.yaml:6:14: bad");
    CHECK(c.errorAt("sink.kafka.properties.linger.ms", "bad").toString() == "t.yaml:8:18: bad");
    CHECK(c.errorAt("sink.kafka.properties", "bad").toString() == "t.yaml:7:5: bad");
    CHECK(c.errorAt("log.level", "bad").toString() == "t.yaml: bad");
}

TEST_CASE("names fold to lower case unless double-quoted, for tables, columns and placeholders",
          "[config][rules][identifiers]") {
    const Config c = parseOk(R"yaml(source:
  postgres:
    dsn: x
  outbox:
    tables: ['"Auth Data"."OutboxMessages"', Public.Outbox, 'app."a.b"', '"we""ird"']
    columns: {id: '"Id"', aggregate_type: '"AggregateType"', aggregate_id: AggregateId, type: '"Type"',
              payload: '"Payload"', timestamp: '"OccurredAt"'}
routing:
  topic: 'outbox.{"AggregateType"}.{Type}'
  key: '{"Aggregate}Id"}-{{x}}'
sink:
  kafka:
    brokers: k:9092
)yaml");
    REQUIRE(c.outbox.tables.size() == 4);
    CHECK(c.outbox.tables[0] == TableName{"Auth Data", "OutboxMessages"});
    CHECK(c.outbox.tables[1] == TableName{"public", "outbox"});
    CHECK(c.outbox.tables[2] == TableName{"app", "a.b"});
    CHECK(c.outbox.tables[3] == TableName{"public", "we\"ird"});
    CHECK(c.outbox.columns.id == "Id");
    CHECK(c.outbox.columns.aggregate_type == "AggregateType");
    CHECK(c.outbox.columns.aggregate_id == "aggregateid");
    CHECK(c.outbox.columns.type == "Type");
    CHECK(c.outbox.columns.payload == "Payload");
    CHECK(c.outbox.columns.timestamp == "OccurredAt");
    REQUIRE(c.routing.topic.parts.size() == 4);
    CHECK(c.routing.topic.parts[1].is_column);
    CHECK(c.routing.topic.parts[1].text == "AggregateType");
    CHECK(c.routing.topic.parts[3].text == "type");
    REQUIRE(c.routing.key.parts.size() == 2);
    CHECK(c.routing.key.parts[0].text == "Aggregate}Id");
    CHECK(c.routing.key.parts[1].text == "-{x}");
}

TEST_CASE("badly quoted names are refused with the reason", "[config][rules][identifiers]") {
    const auto tableError = [](std::string_view table) {
        return onlyError(fmt::format("source:\n  postgres:\n    dsn: x\n  outbox:\n    tables: ['{}']\n"
                                     "sink:\n  kafka:\n    brokers: k:9092\n",
                                     table));
    };
    CHECK_THAT(tableError("\"Outbox").message, Catch::Contains("is not a table name: a double-quoted name is not closed"));
    CHECK_THAT(tableError("\"\"").message, Catch::Contains("must not be empty"));
    CHECK_THAT(tableError("\"a\"b").message, Catch::Contains("comes '.' or nothing"));
    CHECK_THAT(tableError("a.\"b\".c").message, Catch::Contains("at most two parts"));
    CHECK_THAT(tableError("out box").message, Catch::Contains("must be double-quoted"));
    CHECK_THAT(tableError("public.\"Outbox\"\"").message, Catch::Contains("not closed"));
    // The same table written twice, once folded, once quoted in lower case.
    const auto r = parseConfig("source:\n  postgres:\n    dsn: x\n  outbox:\n    tables: [Outbox, '\"outbox\"']\n"
                               "sink:\n  kafka:\n    brokers: k:9092\n",
                               "t.yaml", fakeEnv());
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error()[0].message, Catch::Contains("'public.outbox' is listed twice"));

    const auto column = onlyError("source:\n  postgres:\n    dsn: x\n  outbox:\n    columns: {id: '\"Id\"x'}\n"
                                  "sink:\n  kafka:\n    brokers: k:9092\n");
    CHECK((column.line == 5 && column.column == 19));
    CHECK_THAT(column.message, Catch::Contains("source.outbox.columns.id: nothing may follow the closing"));

    CHECK_THAT(parseTemplate("{\"Agg}").error(), Catch::Contains("not closed"));
    CHECK_THAT(parseTemplate("{\"Agg\"x}").error(), Catch::Contains("close it with '}' right after"));
    CHECK_THAT(parseTemplate("{\"\"}").error(), Catch::Contains("must not be empty"));
}

TEST_CASE("exactly-once delivery and its keys are read; at-least-once stays the default", "[config][rules]") {
    const Config d = parseOk(withKafka("k:9092"));
    CHECK(d.kafka.delivery == Delivery::AtLeastOnce);
    CHECK(d.kafka.transactional_id.empty());
    CHECK(d.kafka.checkpoint_topic == "outboxd.checkpoints");
    CHECK(d.kafka.transaction_interval == std::chrono::milliseconds{50});
    CHECK(d.kafka.transaction_max_events == 10000);

    std::string yaml = withKafka("k:9092") +
                       "    delivery: exactly-once\n    transactional_id: relay-a\n"
                       "    checkpoint_topic: cp\n    transaction_interval_ms: 250\n    transaction_max_events: 42\n";
    const Config c = parseOk(yaml);
    CHECK(c.kafka.delivery == Delivery::ExactlyOnce);
    CHECK(c.kafka.transactional_id == "relay-a");
    CHECK(c.kafka.checkpoint_topic == "cp");
    CHECK(c.kafka.transaction_interval == std::chrono::milliseconds{250});
    CHECK(c.kafka.transaction_max_events == 42);

    CHECK_THAT(onlyError(withKafka("k:9092") + "    delivery: exactly_once\n").message,
               Catch::Contains("exactly-once"));
    CHECK_THAT(onlyError(withKafka("k:9092") + "    checkpoint_topic: \"\"\n").message,
               Catch::Contains("sink.kafka.checkpoint_topic: give a topic name"));
    CHECK(onlyError(withKafka("k:9092") + "    transaction_interval_ms: 0\n").line == 7);
}
