#include "config/config.h"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

using namespace outboxd::config;
using namespace std::chrono_literals;

namespace {

EnvLookup fakeEnv(std::map<std::string, std::string> vars = {}) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        const auto it = vars.find(std::string(name));
        if (it == vars.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

std::expected<Config, std::vector<ConfigError>> parse(std::string_view yaml,
                                                      const EnvLookup& env = fakeEnv()) {
    return parseConfig(yaml, "test.yaml", env);
}

Config parseOk(std::string_view yaml, const EnvLookup& env = fakeEnv()) {
    auto result = parse(yaml, env);
    if (!result) {
        for (const auto& e : result.error()) {
            UNSCOPED_INFO(e.toString());
        }
    }
    REQUIRE(result.has_value());
    return *result;
}

std::vector<ConfigError> parseErrors(std::string_view yaml, const EnvLookup& env = fakeEnv()) {
    auto result = parse(yaml, env);
    REQUIRE_FALSE(result.has_value());
    for (const auto& e : result.error()) {
        UNSCOPED_INFO(e.toString());
    }
    return result.error();
}

ConfigError onlyError(std::string_view yaml, const EnvLookup& env = fakeEnv()) {
    auto errors = parseErrors(yaml, env);
    REQUIRE(errors.size() == 1);
    return errors.front();
}

std::string render(const Template& t) {
    std::string out;
    for (const auto& part : t.parts) {
        out += part.is_column ? "<" + part.text + ">" : part.text;
    }
    return out;
}

constexpr std::string_view kMinimal = R"yaml(source:
  postgres:
    dsn: "host=db dbname=auth"
sink:
  kafka:
    brokers: "kafka:9092"
)yaml";

}  // namespace

TEST_CASE("a minimal config gets the documented defaults", "[config]") {
    const Config c = parseOk(kMinimal);
    CHECK(c.postgres.dsn == "host=db dbname=auth");
    CHECK(c.postgres.slot == "outboxd");
    CHECK(c.postgres.publication == "outboxd");
    CHECK(c.postgres.create_slot);
    CHECK(c.postgres.create_publication);
    CHECK(c.postgres.status_interval == 1000ms);
    CHECK(c.postgres.heartbeat_interval == 0ms);
    CHECK(c.postgres.slot_check_interval == 10000ms);
    REQUIRE(c.outbox.tables.size() == 1);
    CHECK(c.outbox.tables[0] == TableName{"public", "outbox"});
    CHECK(c.outbox.columns.id == "id");
    CHECK(c.outbox.columns.aggregate_type == "aggregatetype");
    CHECK(c.outbox.columns.aggregate_id == "aggregateid");
    CHECK(c.outbox.columns.type == "type");
    CHECK(c.outbox.columns.payload == "payload");
    CHECK(c.outbox.columns.timestamp.empty());
    CHECK(c.routing.topic.source == "outbox.event.{aggregatetype}");
    CHECK(render(c.routing.topic) == "outbox.event.<aggregatetype>");
    CHECK(c.routing.key.source == "{aggregateid}");
    CHECK(render(c.routing.key) == "<aggregateid>");
    CHECK(c.routing.value == ValueMode::Envelope);
    CHECK_FALSE(c.routing.tombstone_on_empty_payload);
    CHECK(c.routing.on_update == OnUpdate::Warn);
    CHECK(c.kafka.brokers == "kafka:9092");
    CHECK(c.kafka.properties.empty());
    CHECK(c.kafka.shutdown_timeout == 10000ms);
    CHECK(c.metrics.listen == "0.0.0.0:9898");
    CHECK(c.log.level == LogLevel::Info);
    CHECK(c.log.format == LogFormat::Text);
}

TEST_CASE("every key is parsed", "[config]") {
    const Config c = parseOk(R"yaml(source:
  postgres:
    dsn: "postgresql://outboxd@db/auth"
    slot: auth_outbox
    publication: auth_pub
    create_slot: false
    create_publication: no
    status_interval_ms: 250
    heartbeat_interval_ms: 30000
    slot_check_interval_ms: 5000
  outbox:
    tables: [app.events, outbox_two]
    columns:
      id: event_id
      aggregate_type: agg_type
      aggregate_id: agg_id
      type: event_type
      payload: body
      timestamp: occurred_at
routing:
  topic: "events.{agg_type}.v1"
  key: "{agg_type}-{agg_id}"
  value: payload
  tombstone_on_empty_payload: true
  on_update: fatal
sink:
  kafka:
    brokers: "k1:9092,k2:9092"
    properties:
      linger.ms: 5
      compression.type: zstd
    shutdown_timeout_ms: 0
metrics:
  listen: "[::]:9100"
log:
  level: debug
  format: json
)yaml");
    CHECK(c.postgres.dsn == "postgresql://outboxd@db/auth");
    CHECK(c.postgres.slot == "auth_outbox");
    CHECK(c.postgres.publication == "auth_pub");
    CHECK_FALSE(c.postgres.create_slot);
    CHECK_FALSE(c.postgres.create_publication);
    CHECK(c.postgres.status_interval == 250ms);
    CHECK(c.postgres.heartbeat_interval == 30000ms);
    CHECK(c.postgres.slot_check_interval == 5000ms);
    REQUIRE(c.outbox.tables.size() == 2);
    CHECK(c.outbox.tables[0] == TableName{"app", "events"});
    CHECK(c.outbox.tables[1] == TableName{"public", "outbox_two"});
    CHECK(c.outbox.columns.id == "event_id");
    CHECK(c.outbox.columns.aggregate_type == "agg_type");
    CHECK(c.outbox.columns.aggregate_id == "agg_id");
    CHECK(c.outbox.columns.type == "event_type");
    CHECK(c.outbox.columns.payload == "body");
    CHECK(c.outbox.columns.timestamp == "occurred_at");
    CHECK(render(c.routing.topic) == "events.<agg_type>.v1");
    CHECK(render(c.routing.key) == "<agg_type>-<agg_id>");
    CHECK(c.routing.value == ValueMode::Payload);
    CHECK(c.routing.tombstone_on_empty_payload);
    CHECK(c.routing.on_update == OnUpdate::Fatal);
    CHECK(c.kafka.brokers == "k1:9092,k2:9092");
    CHECK(c.kafka.properties == std::map<std::string, std::string>{{"linger.ms", "5"},
                                                                   {"compression.type", "zstd"}});
    CHECK(c.kafka.shutdown_timeout == 0ms);
    CHECK(c.metrics.listen == "[::]:9100");
    CHECK(c.log.level == LogLevel::Debug);
    CHECK(c.log.format == LogFormat::Json);
}

TEST_CASE("empty sections and an empty metrics address are accepted", "[config]") {
    const Config c = parseOk(R"yaml(source:
  postgres:
    dsn: x
  outbox:
routing:
sink:
  kafka:
    brokers: k:9092
    properties: {}
metrics:
  listen: ""
log:
)yaml");
    CHECK(c.metrics.listen.empty());
    CHECK(render(c.routing.topic) == "outbox.event.<aggregatetype>");
    CHECK(c.outbox.tables.size() == 1);
}

TEST_CASE("unknown keys are reported at the key, with the allowed keys and a suggestion",
          "[config]") {
    SECTION("a typo gets the closest key") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
    publicaton: p
sink:
  kafka:
    brokers: k:9092
)yaml");
        CHECK(e.line == 4);
        CHECK(e.column == 5);
        CHECK_THAT(e.message, Catch::Contains("unknown key 'source.postgres.publicaton'"));
        CHECK_THAT(e.message, Catch::Contains("did you mean 'publication'?"));
        CHECK_THAT(e.message, Catch::Contains("dsn, slot, publication, create_slot, "
                                              "create_publication, status_interval_ms, "
                                              "heartbeat_interval_ms, slot_check_interval_ms"));
    }
    SECTION("a key at the wrong level is pointed to its place") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
sink:
  brokers: k:9092
  kafka:
    brokers: k:9092
)yaml");
        CHECK(e.line == 5);
        CHECK(e.column == 3);
        CHECK_THAT(e.message, Catch::Contains("'brokers' belongs at 'sink.kafka.brokers'"));
    }
    SECTION("a key far from any other gets no suggestion") {
        const auto e = onlyError(std::string(kMinimal) + "zookeeper: true\n");
        CHECK(e.line == 7);
        CHECK(e.column == 1);
        CHECK_THAT(e.message, Catch::Contains("unknown key 'zookeeper'"));
        CHECK_THAT(e.message, !Catch::Contains("did you mean"));
        CHECK_THAT(e.message,
                   Catch::Contains("allowed at the top level: source, routing, sink, metrics, log"));
    }
}

TEST_CASE("wrong types are reported at the value", "[config]") {
    const auto errors = parseErrors(R"yaml(source:
  postgres:
    dsn: x
    create_slot: "true"
    status_interval_ms: [1]
  outbox:
    tables: public.outbox
sink:
  kafka:
    brokers: {a: 1}
log:
  level:
)yaml");
    REQUIRE(errors.size() == 5);
    CHECK(errors[0].line == 4);
    CHECK(errors[0].column == 18);
    CHECK_THAT(errors[0].message,
               Catch::Contains("source.postgres.create_slot: expected a bool (true or false), got "
                               "a string"));
    CHECK(errors[1].line == 5);
    CHECK(errors[1].column == 25);
    CHECK_THAT(errors[1].message, Catch::Contains("expected an integer, got a list"));
    CHECK(errors[2].line == 7);
    CHECK(errors[2].column == 13);
    CHECK_THAT(errors[2].message,
               Catch::Contains("source.outbox.tables: expected a list of table names, got a string"));
    CHECK(errors[3].line == 10);
    CHECK(errors[3].column == 14);
    CHECK_THAT(errors[3].message, Catch::Contains("sink.kafka.brokers: expected a string, got a map"));
    // An empty value is reported at its key.
    CHECK(errors[4].line == 12);
    CHECK(errors[4].column == 3);
    CHECK_THAT(errors[4].message, Catch::Contains("log.level: expected a string, got nothing"));
}

TEST_CASE("a section that is not a map is one error, without missing-key noise", "[config]") {
    const auto e = onlyError(R"yaml(source:
  postgres: "host=db"
sink:
  kafka:
    brokers: k:9092
)yaml");
    CHECK(e.line == 2);
    CHECK(e.column == 13);
    CHECK_THAT(e.message, Catch::Contains("source.postgres: expected a map"));
}

TEST_CASE("missing required keys point at the parent map's key", "[config]") {
    SECTION("dsn missing under postgres") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    slot: s
sink:
  kafka:
    brokers: k:9092
)yaml");
        CHECK(e.line == 2);
        CHECK(e.column == 3);
        CHECK_THAT(e.message, Catch::Contains("missing required key 'source.postgres.dsn'"));
    }
    SECTION("a whole section missing points at the nearest ancestor present") {
        const auto e = onlyError(R"yaml(# comment line
source:
  postgres:
    dsn: x
)yaml");
        CHECK(e.line == 2);
        CHECK(e.column == 1);
        CHECK_THAT(e.message, Catch::Contains("missing required key 'sink.kafka.brokers'"));
    }
}

TEST_CASE("invalid values are reported with their position", "[config]") {
    SECTION("out of range") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
    status_interval_ms: 50
sink:
  kafka:
    brokers: k:9092
    shutdown_timeout_ms: 1000
)yaml");
        CHECK(e.line == 4);
        CHECK(e.column == 25);
        CHECK_THAT(e.message, Catch::Contains("must be between 100 and 60000, got 50"));
    }
    SECTION("bad enum, with a suggestion") {
        const auto e = onlyError(std::string(kMinimal) + "log:\n  level: warning\n");
        CHECK(e.line == 8);
        CHECK(e.column == 10);
        CHECK_THAT(e.message, Catch::Contains("log.level: invalid value 'warning'; use one of "
                                              "trace, debug, info, warn, error"));
        CHECK_THAT(e.message, Catch::Contains("did you mean 'warn'?"));
    }
    SECTION("bad template") {
        const auto e = onlyError(std::string(kMinimal) + "routing:\n  topic: \"events.{type\"\n");
        CHECK(e.line == 8);
        CHECK(e.column == 10);
        CHECK_THAT(e.message, Catch::Contains("routing.topic: unmatched '{' at character 8"));
    }
    SECTION("empty topic") {
        const auto e = onlyError(std::string(kMinimal) + "routing:\n  topic: \"\"\n");
        CHECK(e.line == 8);
        CHECK_THAT(e.message, Catch::Contains("routing.topic: must not be empty"));
    }
    SECTION("topic with characters Kafka refuses") {
        const auto e = onlyError(std::string(kMinimal) + "routing:\n  topic: \"my events/{type}\"\n");
        CHECK(e.line == 8);
        CHECK_THAT(e.message, Catch::Contains("a Kafka topic name cannot hold"));
    }
    SECTION("bad replication slot name") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
    slot: My-Slot
sink:
  kafka:
    brokers: k:9092
)yaml");
        CHECK(e.line == 4);
        CHECK(e.column == 11);
        CHECK_THAT(e.message, Catch::Contains("not a valid replication slot name"));
    }
    SECTION("empty column name") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
  outbox:
    columns:
      payload: ""
      timestamp: ""
sink:
  kafka:
    brokers: k:9092
)yaml");
        CHECK(e.line == 6);
        CHECK(e.column == 16);
        CHECK_THAT(e.message, Catch::Contains("source.outbox.columns.payload: a column name must "
                                              "not be empty"));
    }
    SECTION("empty brokers entry") {
        const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
sink:
  kafka:
    brokers: "k1:9092,"
)yaml");
        CHECK(e.line == 6);
        CHECK(e.column == 14);
        CHECK_THAT(e.message, Catch::Contains("sink.kafka.brokers"));
    }
}

TEST_CASE("outbox tables are validated", "[config]") {
    const auto errors = parseErrors(R"yaml(source:
  postgres:
    dsn: x
  outbox:
    tables:
      - public.outbox
      - a.b.c
      - .outbox
      - outbox
      - [x]
sink:
  kafka:
    brokers: k:9092
)yaml");
    REQUIRE(errors.size() == 4);
    CHECK(errors[0].line == 7);
    CHECK(errors[0].column == 9);
    CHECK_THAT(errors[0].message, Catch::Contains("'a.b.c' is not a table name"));
    CHECK(errors[1].line == 8);
    CHECK_THAT(errors[1].message, Catch::Contains("'.outbox' is not a table name"));
    CHECK(errors[2].line == 9);
    CHECK_THAT(errors[2].message, Catch::Contains("'public.outbox' is listed twice"));
    CHECK(errors[3].line == 10);
    CHECK(errors[3].column == 9);
    CHECK_THAT(errors[3].message, Catch::Contains("got a list"));

    const auto empty = onlyError(R"yaml(source:
  postgres:
    dsn: x
  outbox:
    tables: []
sink:
  kafka:
    brokers: k:9092
)yaml");
    CHECK(empty.line == 5);
    CHECK(empty.column == 13);
    CHECK_THAT(empty.message, Catch::Contains("give at least one outbox table"));
}

TEST_CASE("metrics.listen must be host:port or empty", "[config]") {
    const auto listen = [](const std::string& value) {
        return parse(std::string(kMinimal) + "metrics:\n  listen: \"" + value + "\"\n");
    };
    for (const std::string ok : {"", "0.0.0.0:9898", "localhost:1", "metrics-host:65535",
                                 "[::]:9898", "[::1]:80"}) {
        INFO(ok);
        CHECK(listen(ok).has_value());
    }
    for (const std::string bad : {"9898", "0.0.0.0:0", "0.0.0.0:65536", "0.0.0.0:", ":9898",
                                  "::1:9898", "[::1]9898", "host:port", "a b:80"}) {
        INFO(bad);
        const auto result = listen(bad);
        REQUIRE_FALSE(result.has_value());
        REQUIRE(result.error().size() == 1);
        CHECK(result.error()[0].line == 8);
        CHECK(result.error()[0].column == 11);
        CHECK_THAT(result.error()[0].message, Catch::StartsWith("metrics.listen: "));
    }
}

TEST_CASE("broken YAML is one error at the parser's position", "[config]") {
    const auto e = onlyError("source:\n  postgres: [1, 2\nsink: 3\n");
    // yaml-cpp notices the unclosed flow list at "sink: 3" (0-based 2:4).
    CHECK(e.line == 3);
    CHECK(e.column == 5);
    CHECK_THAT(e.message, Catch::StartsWith("invalid YAML: "));

    const auto bad_indent = onlyError("source:\n  postgres:\n    dsn: x\n   slot: y\n");
    CHECK(bad_indent.line > 0);
    CHECK_THAT(bad_indent.message, Catch::StartsWith("invalid YAML: "));
    CHECK(bad_indent.toString().starts_with("test.yaml:" + std::to_string(bad_indent.line) + ":"));
}

TEST_CASE("documents that are empty, not a map or more than one are errors", "[config]") {
    const auto empty = onlyError("# nothing here\n");
    CHECK(empty.line == 0);
    CHECK_THAT(empty.message, Catch::Contains("the configuration is empty"));

    const auto scalar = onlyError("just text\n");
    CHECK(scalar.line == 1);
    CHECK(scalar.column == 1);
    CHECK_THAT(scalar.message, Catch::Contains("expected a map of sections"));

    const auto two = parseErrors(std::string(kMinimal) + "---\nlog: {}\n");
    REQUIRE(two.size() == 1);
    CHECK(two[0].line == 7);  // the "---" line
    CHECK_THAT(two[0].message, Catch::Contains("second YAML document"));
}

TEST_CASE("duplicate keys are errors", "[config]") {
    const auto e = onlyError(R"yaml(source:
  postgres:
    dsn: x
    slot: a
    slot: b
sink:
  kafka:
    brokers: k:9092
)yaml");
    CHECK(e.line == 5);
    CHECK(e.column == 5);
    CHECK_THAT(e.message, Catch::Contains("duplicate key 'source.postgres.slot' (first given at "
                                          "line 4)"));
}

TEST_CASE("every problem is reported at once, in file order", "[config]") {
    const auto errors = parseErrors(R"yaml(source:
  postgres:
    slot: s
    create_slot: maybe
  outbox:
    colums: {}
routing:
  key: "{}"
sink:
  kafka:
    properties:
      acks: 1
log:
  format: xml
)yaml");
    REQUIRE(errors.size() == 7);
    CHECK((errors[0].line == 2 && errors[0].column == 3));  // missing dsn, at postgres
    CHECK_THAT(errors[0].message, Catch::Contains("'source.postgres.dsn'"));
    CHECK((errors[1].line == 4 && errors[1].column == 18));
    CHECK_THAT(errors[1].message, Catch::Contains("create_slot"));
    CHECK((errors[2].line == 6 && errors[2].column == 5));
    CHECK_THAT(errors[2].message, Catch::Contains("did you mean 'columns'?"));
    CHECK((errors[3].line == 8 && errors[3].column == 8));
    CHECK_THAT(errors[3].message, Catch::Contains("routing.key: empty placeholder"));
    CHECK((errors[4].line == 10 && errors[4].column == 3));  // missing brokers, at kafka
    CHECK_THAT(errors[4].message, Catch::Contains("'sink.kafka.brokers'"));
    CHECK((errors[5].line == 12 && errors[5].column == 13));
    CHECK_THAT(errors[5].message, Catch::Contains("acks=all"));
    CHECK((errors[6].line == 14 && errors[6].column == 11));
    CHECK_THAT(errors[6].message, Catch::Contains("use one of text, json"));
    for (const auto& e : errors) {
        CHECK(e.file == "test.yaml");
    }
}

TEST_CASE("expandEnv replaces variables, defaults and $$", "[config]") {
    const auto env = fakeEnv({{"USER", "outboxd"}, {"EMPTY", ""}, {"PORT", "5432"}});
    CHECK(expandEnv("plain text", env) == "plain text");
    CHECK(expandEnv("u=${USER} p=${PORT}", env) == "u=outboxd p=5432");
    CHECK(expandEnv("${UNSET:-fallback}", env) == "fallback");
    CHECK(expandEnv("${EMPTY:-fallback}", env) == "fallback");
    CHECK(expandEnv("${USER:-fallback}", env) == "outboxd");
    CHECK(expandEnv("${UNSET:-}", env) == "");
    CHECK(expandEnv("${EMPTY}", env) == "");
    CHECK(expandEnv("$${USER}", env) == "${USER}");
    CHECK(expandEnv("cost $5 and $$", env) == "cost $5 and $");
    CHECK(expandEnv("end$", env) == "end$");

    const auto unset = expandEnv("a ${PGPASSWORD} b", env);
    REQUIRE_FALSE(unset.has_value());
    CHECK_THAT(unset.error(), Catch::Contains("environment variable 'PGPASSWORD' is not set"));

    CHECK_FALSE(expandEnv("${USER", env).has_value());
    CHECK_FALSE(expandEnv("${}", env).has_value());
    CHECK_FALSE(expandEnv("${1X}", env).has_value());
    CHECK_FALSE(expandEnv("${A B}", env).has_value());
}

TEST_CASE("config values are expanded from the environment", "[config]") {
    const auto env = fakeEnv({{"PGPASSWORD", "s3cret"},
                              {"BROKERS", "k1:9092,k2:9092"},
                              {"KAFKA_PASSWORD", "kpass"},
                              {"INTERVAL", "500"}});
    const Config c = parseOk(R"yaml(source:
  postgres:
    dsn: "host=db password=${PGPASSWORD} user=${PGUSER:-outboxd} note=$$x"
    status_interval_ms: ${INTERVAL}
    create_slot: "${CREATE:-false}"
sink:
  kafka:
    brokers: ${BROKERS}
    properties:
      sasl.password: ${KAFKA_PASSWORD}
)yaml",
                             env);
    CHECK(c.postgres.dsn == "host=db password=s3cret user=outboxd note=$x");
    CHECK(c.postgres.status_interval == 500ms);
    CHECK_FALSE(c.postgres.create_slot);
    CHECK(c.kafka.brokers == "k1:9092,k2:9092");
    CHECK(c.kafka.properties.at("sasl.password") == "kpass");
}

TEST_CASE("an unset variable is an error naming it, never echoing the value", "[config]") {
    const auto errors = parseErrors(R"yaml(source:
  postgres:
    dsn: "host=db password=hunter2 user=${PGUSER}"
sink:
  kafka:
    brokers: k:9092
    properties:
      sasl.password: "hunter2${KAFKA_PW}"
)yaml");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].line == 3);
    CHECK(errors[0].column == 10);
    CHECK_THAT(errors[0].message, Catch::StartsWith("source.postgres.dsn: environment variable "
                                                    "'PGUSER' is not set"));
    CHECK(errors[1].line == 8);
    CHECK(errors[1].column == 22);
    CHECK_THAT(errors[1].message,
               Catch::Contains("sink.kafka.properties.sasl.password: environment variable "
                               "'KAFKA_PW' is not set"));
    for (const auto& e : errors) {
        CHECK_THAT(e.toString(), !Catch::Contains("hunter2"));
    }
}

TEST_CASE("secret values never appear in error messages", "[config]") {
    const auto errors = parseErrors(R"yaml(source:
  postgres:
    dsn: ["password=hunter2"]
sink:
  kafka:
    brokers: k:9092
    properties:
      sasl.password: [hunter2]
      ssl.key.password: {v: hunter2}
      enable.idempotence: hunter2
)yaml");
    REQUIRE(errors.size() == 4);
    for (const auto& e : errors) {
        CHECK_THAT(e.toString(), !Catch::Contains("hunter2"));
    }
    CHECK(isSecretKey("sasl.password"));
    CHECK(isSecretKey("ssl.key.password"));
    CHECK(isSecretKey("sasl.oauthbearer.client.secret"));
    CHECK(isSecretKey("ssl.key.pem"));
    CHECK(isSecretKey("dsn"));
    CHECK(isSecretKey("source.postgres.dsn"));
    CHECK_FALSE(isSecretKey("linger.ms"));
    CHECK_FALSE(isSecretKey("compression.type"));
}

TEST_CASE("librdkafka properties keep their scalars verbatim", "[config]") {
    const Config c = parseOk(std::string(kMinimal) + R"yaml(    properties:
      linger.ms: 5
      socket.keepalive.enable: true
      batch.num.messages: 010
      some.ratio: 1.50
      client.id: "007"
      debug: broker,topic
      acks: all
      enable.idempotence: true
)yaml");
    const std::map<std::string, std::string> expected{
        {"linger.ms", "5"},           {"socket.keepalive.enable", "true"},
        {"batch.num.messages", "010"}, {"some.ratio", "1.50"},
        {"client.id", "007"},         {"debug", "broker,topic"},
        {"acks", "all"},              {"enable.idempotence", "true"},
    };
    CHECK(c.kafka.properties == expected);
}

TEST_CASE("properties cannot weaken delivery or duplicate the brokers", "[config]") {
    const auto errors = parseErrors(std::string(kMinimal) + R"yaml(    properties:
      enable.idempotence: false
      acks: 1
      bootstrap.servers: other:9092
      nested: {a: 1}
      empty:
)yaml");
    REQUIRE(errors.size() == 5);
    CHECK((errors[0].line == 8 && errors[0].column == 27));
    CHECK_THAT(errors[0].message, Catch::Contains("idempotent producer"));
    CHECK((errors[1].line == 9 && errors[1].column == 13));
    CHECK((errors[2].line == 10 && errors[2].column == 7));
    CHECK_THAT(errors[2].message, Catch::Contains("sink.kafka.brokers"));
    CHECK((errors[3].line == 11 && errors[3].column == 15));
    CHECK_THAT(errors[3].message, Catch::Contains("expected a scalar value"));
    CHECK((errors[4].line == 12 && errors[4].column == 7));

    const Config c = parseOk(std::string(kMinimal) + "    properties:\n      acks: -1\n");
    CHECK(c.kafka.properties.at("acks") == "-1");
}

TEST_CASE("parseTemplate splits literals and placeholders", "[config]") {
    SECTION("literal and placeholders") {
        const auto t = parseTemplate("outbox.event.{aggregatetype}");
        REQUIRE(t.has_value());
        CHECK(t->source == "outbox.event.{aggregatetype}");
        REQUIRE(t->parts.size() == 2);
        CHECK_FALSE(t->parts[0].is_column);
        CHECK(t->parts[0].text == "outbox.event.");
        CHECK(t->parts[1].is_column);
        CHECK(t->parts[1].text == "aggregatetype");
    }
    SECTION("adjacent placeholders and trailing literal") {
        const auto t = parseTemplate("{a}{b_2}-x");
        REQUIRE(t.has_value());
        CHECK(render(*t) == "<a><b_2>-x");
        CHECK(t->parts.size() == 3);
    }
    SECTION("escaped braces are literal and merged with neighbouring text") {
        const auto t = parseTemplate("{{lit}}.{col}.}}{{");
        REQUIRE(t.has_value());
        REQUIRE(t->parts.size() == 3);
        CHECK(t->parts[0].text == "{lit}.");
        CHECK_FALSE(t->parts[0].is_column);
        CHECK(t->parts[1].text == "col");
        CHECK(t->parts[2].text == ".}{");
    }
    SECTION("no placeholders, and empty") {
        CHECK(render(*parseTemplate("fixed-topic")) == "fixed-topic");
        const auto empty = parseTemplate("");
        REQUIRE(empty.has_value());
        CHECK(empty->parts.empty());
    }
    SECTION("errors") {
        const auto check = [](std::string_view text, std::string_view fragment) {
            const auto t = parseTemplate(text);
            INFO(text);
            REQUIRE_FALSE(t.has_value());
            CHECK_THAT(t.error(), Catch::Contains(std::string(fragment)));
        };
        check("a.{b", "unmatched '{' at character 3");
        check("a}b", "unmatched '}' at character 2");
        check("{}", "empty placeholder");
        check("{a{b}}", "unmatched '{' at character 1");
        check("{1abc}", "not a column name");
        check("{a b}", "not a column name");
        check("{a-b}", "not a column name");
        check("x{{y}", "unmatched '}' at character 5");
    }
}

TEST_CASE("ConfigError::toString formats FILE:LINE:COL", "[config]") {
    CHECK(ConfigError{"c.yaml", 3, 7, "bad"}.toString() == "c.yaml:3:7: bad");
    CHECK(ConfigError{"c.yaml", 0, 0, "unreadable"}.toString() == "c.yaml: unreadable");
}

TEST_CASE("loadConfig reads a file and reports an unreadable one", "[config]") {
    const auto dir = std::filesystem::temp_directory_path() / "outboxd_config_test";
    std::filesystem::create_directories(dir);
    const auto path = (dir / "ok.yaml").string();
    {
        std::ofstream out(path);
        out << kMinimal << "log:\n  level: \"verbose\"\n";
    }
    const auto bad = loadConfig(path, fakeEnv());
    REQUIRE_FALSE(bad.has_value());
    REQUIRE(bad.error().size() == 1);
    CHECK(bad.error()[0].toString().starts_with(path + ":8:10: log.level: invalid value"));

    const auto missing_path = (dir / "does-not-exist.yaml").string();
    const auto missing = loadConfig(missing_path, fakeEnv());
    REQUIRE_FALSE(missing.has_value());
    REQUIRE(missing.error().size() == 1);
    CHECK(missing.error()[0].file == missing_path);
    CHECK(missing.error()[0].line == 0);
    CHECK_THAT(missing.error()[0].message, Catch::Contains(std::strerror(ENOENT)));
    CHECK(missing.error()[0].toString().starts_with(missing_path + ": cannot read"));

    const auto directory = loadConfig(dir.string(), fakeEnv());
    REQUIRE_FALSE(directory.has_value());
    REQUIRE(directory.error().size() == 1);
    CHECK_THAT(directory.error()[0].message, Catch::Contains(std::strerror(EISDIR)));

    std::filesystem::remove_all(dir);
}

TEST_CASE("processEnv reads the process environment", "[config]") {
    ::setenv("OUTBOXD_CONFIG_TEST_VAR", "value-1", 1);
    ::unsetenv("OUTBOXD_CONFIG_TEST_UNSET");
    const EnvLookup env = processEnv();
    CHECK(env("OUTBOXD_CONFIG_TEST_VAR") == std::optional<std::string>("value-1"));
    CHECK_FALSE(env("OUTBOXD_CONFIG_TEST_UNSET").has_value());
}

#ifdef OUTBOXD_SOURCE_DIR
TEST_CASE("config/example.yaml is valid and shows every key", "[config]") {
    const std::string path = std::string(OUTBOXD_SOURCE_DIR) + "/config/example.yaml";
    const auto defaults = loadConfig(path, fakeEnv());
    if (!defaults) {
        for (const auto& e : defaults.error()) {
            UNSCOPED_INFO(e.toString());
        }
    }
    REQUIRE(defaults.has_value());
    CHECK(defaults->postgres.dsn ==
          "host=127.0.0.1 port=5432 dbname=auth user=outboxd password=");
    CHECK(defaults->kafka.brokers == "127.0.0.1:9092");
    CHECK(defaults->postgres.status_interval == 1000ms);
    CHECK(defaults->kafka.shutdown_timeout == 10000ms);
    CHECK(defaults->outbox.columns.timestamp.empty());

    const auto with_env =
        loadConfig(path, fakeEnv({{"PGPASSWORD", "pw"}, {"KAFKA_BROKERS", "kafka:9092"}}));
    REQUIRE(with_env.has_value());
    CHECK(with_env->postgres.dsn ==
          "host=127.0.0.1 port=5432 dbname=auth user=outboxd password=pw");
    CHECK(with_env->kafka.brokers == "kafka:9092");
}
#endif

TEST_CASE("bytes that are not UTF-8 are one positioned error, not a hang", "[config]") {
    // fuzz/config_fuzz found that yaml-cpp 0.7 spins on invalid UTF-8 (fuzz/corpus/config/
    // regression-invalid-utf8-hang); the loader refuses such text before parsing it.
    std::string yaml = "source:\n  postgres:\n    dsn: \"abc\xff\xff\"\n";
    auto result = parse(yaml);
    REQUIRE_FALSE(result);
    REQUIRE(result.error().size() == 1);
    CHECK(result.error()[0].line == 3);
    CHECK(result.error()[0].column == 14);
    CHECK_THAT(result.error()[0].message, Catch::Contains("UTF-8"));

    CHECK_FALSE(parse(std::string("a: \xc0\xaf\n")));             // overlong
    CHECK_FALSE(parse(std::string("a: \xed\xa0\x80\n")));         // surrogate
    CHECK_FALSE(parse(std::string("a: b\0c\n", 7)));              // NUL
    auto ok = parse("source:\n  postgres:\n    dsn: \"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"\n"
                    "sink:\n  kafka:\n    brokers: \"k:9092\"\n");
    CHECK(ok);
}

TEST_CASE("the fuzzer's hang reproducer is answered at once", "[config]") {
    auto path = std::string(OUTBOXD_SOURCE_DIR) + "/fuzz/corpus/config/regression-invalid-utf8-hang";
    auto result = loadConfig(path, fakeEnv());
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error()[0].message, Catch::Contains("UTF-8"));
}

TEST_CASE("a stray ',' is answered at once (yaml-cpp's LoadAll never ended on it)", "[config]") {
    auto result = parse("\n,");
    REQUIRE_FALSE(result);
    auto two = parse("source:\n  postgres:\n    dsn: x\nsink:\n  kafka:\n    brokers: k\n---\na: 1\n");
    REQUIRE_FALSE(two);
    bool found = false;
    for (const auto& e : two.error()) {
        if (e.message.find("second YAML document") != std::string::npos) {
            found = true;
            CHECK(e.line == 7);
        }
    }
    CHECK(found);
}
