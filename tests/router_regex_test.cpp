// routing.topic_regex: Debezium's route.topic.regex + route.topic.replacement, as a regex matched
// against the whole aggregate_type value and a topic template that uses its groups.

#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"
#include "outbox/router.h"

using namespace outboxd;
using cdc::pgoutput::Column;
using cdc::pgoutput::Insert;
using cdc::pgoutput::Relation;
using cdc::pgoutput::RelationId;
using cdc::pgoutput::Value;
using cdc::pgoutput::ValueKind;

namespace {

config::Config configWith(const std::string& routing) {
    const std::string yaml = "source:\n  postgres:\n    dsn: \"host=db\"\nsink:\n  kafka:\n    brokers: \"k:9092\"\n"
                             "routing:\n" + routing;
    auto parsed = config::parseConfig(yaml, "test.yaml", [](std::string_view) { return std::nullopt; });
    if (!parsed) FAIL(parsed.error().front().toString());
    return *parsed;
}

std::vector<config::ConfigError> errorsOf(const std::string& routing) {
    const std::string yaml = "source:\n  postgres:\n    dsn: \"host=db\"\nsink:\n  kafka:\n    brokers: \"k:9092\"\n"
                             "routing:\n" + routing;
    auto parsed = config::parseConfig(yaml, "test.yaml", [](std::string_view) { return std::nullopt; });
    REQUIRE_FALSE(parsed);
    return parsed.error();
}

Relation outboxRelation() {
    Relation r;
    r.id = RelationId{16384};
    r.schema = "public";
    r.name = "outbox";
    r.columns = {Column{1, "id", 2950, -1}, Column{0, "aggregatetype", 25, -1}, Column{0, "aggregateid", 25, -1},
                 Column{0, "type", 25, -1}, Column{0, "payload", 3802, -1}};
    return r;
}

// `aggregate_type` must outlive the Insert: a Value is a view of its text (callers pass literals).
Insert row(std::string_view aggregate_type) {
    Insert ins;
    ins.relation = RelationId{16384};
    ins.new_tuple = {Value{ValueKind::Text, "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"},
                     Value{ValueKind::Text, aggregate_type}, Value{ValueKind::Text, "42"},
                     Value{ValueKind::Text, "UserRegistered"}, Value{ValueKind::Text, "{}"}};
    return ins;
}

std::string topicOf(const config::Config& config, std::string_view aggregate_type) {
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    outbox::OutboxEvent ev;
    auto routed = router.route(row(aggregate_type), outbox::ChangeContext{}, ev);
    if (!routed) FAIL(routed.error().message);
    return ev.topic;
}

}  // namespace

TEST_CASE("Debezium's default route regex and replacement, written as a regex, route as the template does", "[router][regex]") {
    const auto config = configWith("  topic_regex: \"(?<routedByValue>.*)\"\n  topic: \"outbox.event.{$routedByValue}\"\n");
    CHECK(topicOf(config, "customers") == "outbox.event.customers");
    CHECK(topicOf(config, "Order") == "outbox.event.Order");
}

TEST_CASE("a regex's named and numbered groups fill the topic, beside columns", "[router][regex]") {
    const auto named = configWith("  topic_regex: \"(?<service>[a-z]+)\\\\.(?<entity>.+)\"\n"
                                  "  topic: \"{$service}-events.{$entity}\"\n");
    CHECK(topicOf(named, "billing.Invoice") == "billing-events.Invoice");
    const auto numbered = configWith("  topic_regex: \"([a-z]+)_(v[0-9]+)\"\n  topic: \"{$2}.{$1}.{type}\"\n");
    CHECK(topicOf(numbered, "user_v2") == "v2.user.UserRegistered");
    const auto optional = configWith("  topic_regex: \"(?<base>[a-z]+)(?<suffix>-[0-9]+)?\"\n  topic: \"t.{$base}{$suffix}\"\n");
    CHECK(topicOf(optional, "user") == "t.user");
    CHECK(topicOf(optional, "user-7") == "t.user-7");
}

TEST_CASE("the regex must match the whole value; a value it does not match is the topic itself, as Kafka's RegexRouter leaves it", "[router][regex]") {
    const auto config = configWith("  topic_regex: \"(?<kind>user|order)\"\n  topic: \"events.{$kind}\"\n");
    CHECK(topicOf(config, "user") == "events.user");
    CHECK(topicOf(config, "users") == "users");
    CHECK(topicOf(config, "xuser") == "xuser");
}

TEST_CASE("inline flags work: (?i) matches regardless of case and keeps the value's own case", "[router][regex]") {
    const auto config = configWith("  topic_regex: \"(?i)(?<name>customer)s?\"\n  topic: \"crm.{$name}\"\n");
    CHECK(topicOf(config, "Customers") == "crm.Customer");
    CHECK(topicOf(config, "CUSTOMER") == "crm.CUSTOMER");
}

TEST_CASE("a NULL aggregate type with a topic regex is an invalid row, not a topic", "[router][regex]") {
    const auto config = configWith("  topic_regex: \"(.*)\"\n  topic: \"outbox.event.{$1}\"\n");
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    Insert ins = row("x");
    ins.new_tuple[1] = Value{ValueKind::Null, {}};
    outbox::OutboxEvent ev;
    auto routed = router.route(ins, outbox::ChangeContext{}, ev);
    REQUIRE_FALSE(routed);
    CHECK(router.lastInvalidReason() == "null_topic");
    CHECK_THAT(routed.error().message, Catch::Contains("aggregatetype"));
}

TEST_CASE("topic_regex mistakes are configuration errors at their line", "[config][regex]") {
    SECTION("a group placeholder without a regex") {
        auto errors = errorsOf("  topic: \"outbox.event.{$routedByValue}\"\n");
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].line == 8);
        CHECK_THAT(errors[0].message, Catch::Contains("routing.topic_regex is not set"));
    }
    SECTION("a group the regex does not have") {
        auto errors = errorsOf("  topic_regex: \"(?<routedByValue>.*)\"\n  topic: \"outbox.event.{$value}\"\n");
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].line == 9);
        CHECK_THAT(errors[0].message, Catch::Contains("{$value} is not a group"));
        auto numbered = errorsOf("  topic_regex: \"(a)(b)\"\n  topic: \"t.{$3}\"\n");
        CHECK_THAT(numbered[0].message, Catch::Contains("{$3} is not a group"));
    }
    SECTION("a regex that does not compile, and nothing more about the topic") {
        auto errors = errorsOf("  topic_regex: \"(?<routedByValue>.*\"\n  topic: \"outbox.event.{$routedByValue}\"\n");
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].line == 8);
        CHECK(errors[0].column == 16);
        CHECK_THAT(errors[0].message, Catch::Contains("routing.topic_regex: not a valid regular expression"));
    }
    SECTION("a malformed group placeholder") {
        auto errors = errorsOf("  topic_regex: \"(.*)\"\n  topic: \"t.{$a-b}\"\n");
        CHECK_THAT(errors[0].message, Catch::Contains("is not a regex group"));
    }
    SECTION("a group placeholder in the key") {
        auto errors = errorsOf("  topic_regex: \"(.*)\"\n  key: \"{$1}\"\n");
        CHECK_THAT(errors[0].message, Catch::Contains("routing.key: {$group} placeholders belong in routing.topic"));
    }
}

TEST_CASE("the literal text around groups is still checked as a topic name", "[config][regex]") {
    auto errors = errorsOf("  topic_regex: \"(.*)\"\n  topic: \"bad topic/{$1}\"\n");
    CHECK_THAT(errors[0].message, Catch::Contains("characters a Kafka topic name cannot hold"));
}
