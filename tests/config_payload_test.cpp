// payload.protobuf and invalid_rows: read, defaulted and checked (the descriptor set itself is
// loaded by the app, tests/payload_test.cpp and tests/app_test.cpp).
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "config/config.h"

using namespace outboxd::config;

namespace {

constexpr std::string_view kBase = R"(
source:
  postgres:
    dsn: "host=db dbname=auth"
sink:
  kafka:
    brokers: "kafka:9092"
)";

std::expected<Config, std::vector<ConfigError>> parseWith(std::string_view extra) {
    const std::string yaml = std::string(kBase) + std::string(extra);
    return parseConfig(yaml, "test.yaml", [](std::string_view) { return std::nullopt; });
}

}  // namespace

TEST_CASE("typed payloads and invalid rows default to off and fail", "[config]") {
    const auto c = parseWith("");
    REQUIRE(c.has_value());
    CHECK(c->payload.protobuf.descriptor_set.empty());
    CHECK(c->payload.protobuf.types.empty());
    CHECK(c->payload.protobuf.unknown_fields == UnknownFields::Fail);
    CHECK(c->payload.protobuf.untyped == Untyped::Pass);
    CHECK(c->invalid_rows.action == InvalidRowAction::Fail);
    CHECK(c->invalid_rows.dead_letter_topic == "outbox.dead-letter");
}

TEST_CASE("payload.protobuf is read with the position of the descriptor set", "[config]") {
    const auto c = parseWith(R"(
payload:
  protobuf:
    descriptor_set: /etc/outboxd/events.binpb
    types:
      UserRegistered: playball.auth.v1.UserRegistered
      UserDeleted: playball.auth.v1.UserDeleted
    unknown_fields: ignore
    untyped: fail
invalid_rows:
  action: dead-letter
  dead_letter_topic: auth.dead-letter
)");
    REQUIRE(c.has_value());
    const auto& pb = c->payload.protobuf;
    CHECK(pb.descriptor_set == "/etc/outboxd/events.binpb");
    CHECK(pb.line == 11);
    CHECK(pb.column == 21);
    CHECK(pb.types.size() == 2);
    CHECK(pb.types.at("UserRegistered") == "playball.auth.v1.UserRegistered");
    CHECK(pb.unknown_fields == UnknownFields::Ignore);
    CHECK(pb.untyped == Untyped::Fail);
    CHECK(c->invalid_rows.action == InvalidRowAction::DeadLetter);
    CHECK(c->invalid_rows.dead_letter_topic == "auth.dead-letter");
}

TEST_CASE("payload and invalid_rows mistakes are configuration errors with their place", "[config]") {
    const auto [extra, expected] = GENERATE(table<std::string, std::string>({
        {"payload:\n  protobuf:\n    types:\n      A: x.A\n",
         "test.yaml:10:5: payload.protobuf.types needs payload.protobuf.descriptor_set"},
        {"payload:\n  protobuf:\n    descriptor_set: a.binpb\n    types:\n      A: [x]\n",
         "test.yaml:12:10: payload.protobuf.types.A: expected a message full name"},
        {"payload:\n  protobuf:\n    unknown_fields: drop\n",
         "test.yaml:10:21: payload.protobuf.unknown_fields: invalid value 'drop'; use one of fail, ignore"},
        {"payload:\n  protobuf:\n    untyped: passs\n",
         "test.yaml:10:14: payload.protobuf.untyped: invalid value 'passs'; use one of pass, fail (did you mean "
         "'pass'?)"},
        {"invalid_rows:\n  action: deadletter\n",
         "test.yaml:9:11: invalid_rows.action: invalid value 'deadletter'; use one of fail, dead-letter (did you "
         "mean 'dead-letter'?)"},
        {"invalid_rows:\n  dead_letter_topic: \"bad topic\"\n",
         "test.yaml:9:22: invalid_rows.dead_letter_topic: 'bad topic' is not a valid Kafka topic name"},
        {"invalid_rows:\n  dead_leter_topic: x\n", "did you mean 'dead_letter_topic'"},
        {"routing:\n  value: payloads\n",
         "test.yaml:9:10: routing.value: invalid value 'payloads'; use one of envelope, payload (did you mean "
         "'payload'?)"},
    }));
    CAPTURE(extra);
    const auto c = parseWith(extra);
    REQUIRE_FALSE(c.has_value());
    REQUIRE(c.error().size() == 1);
    CHECK_THAT(c.error().front().toString(), Catch::Contains(expected));
}

namespace {
std::expected<Config, std::vector<ConfigError>> parseMessages(std::string_view messages) {
    const std::string yaml = fmt::format(R"(source:
  postgres:
    dsn: "host=db dbname=auth"
  outbox:
    messages:
{}sink:
  kafka:
    brokers: "kafka:9092"
)",
                                         messages);
    return parseConfig(yaml, "test.yaml", [](std::string_view) { return std::nullopt; });
}
}  // namespace

TEST_CASE("logical messages as events: prefixes and the non-transactional policy", "[config]") {
    const auto plain = parseWith("");
    REQUIRE(plain.has_value());
    CHECK(plain->outbox.messages.prefixes.empty());
    CHECK(plain->outbox.messages.non_transactional == NonTransactional::Refuse);

    const auto c = parseMessages("      prefixes: [outbox, \"auth.events\"]\n      non_transactional: accept\n");
    REQUIRE(c.has_value());
    CHECK(c->outbox.messages.prefixes == std::vector<std::string>{"outbox", "auth.events"});
    CHECK(c->outbox.messages.non_transactional == NonTransactional::Accept);

    const auto [entry, expected] = GENERATE(table<std::string, std::string>({
        {"      prefixes: outbox\n", "source.outbox.messages.prefixes: expected a list of prefixes"},
        {"      prefixes: [\"\"]\n", "a prefix must not be empty"},
        {"      prefixes: [a, a]\n", "'a' is listed twice"},
        {"      prefixes: [outboxd.heartbeat]\n", "outboxd's own heartbeat"},
        {"      prefixes: [[a]]\n", "each entry must be a string"},
        {"      non_transactional: yes\n", "use one of refuse, accept"},
        {"      prefix: [a]\n", "did you mean 'prefixes'"},
    }));
    CAPTURE(entry);
    const auto bad = parseMessages(entry);
    REQUIRE_FALSE(bad.has_value());
    CHECK_THAT(bad.error().front().toString(), Catch::Contains(expected));
}
