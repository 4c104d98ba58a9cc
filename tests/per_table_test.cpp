// Per-table settings of source.outbox.tables: each table's own columns, topic and key, read from
// the configuration and used by the router for that table's rows only.
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

std::optional<std::string> noEnv(std::string_view) {
    return std::nullopt;
}

std::string withTables(std::string_view tables) {
    return std::string(R"(
source:
  postgres:
    dsn: "host=db"
  outbox:
    columns: {payload: body}
)") + std::string(tables) +
           R"(
routing:
  topic: "outbox.event.{aggregatetype}"
sink:
  kafka:
    brokers: "kafka:9092"
)";
}

const char* const kTwoTables = R"(
    tables:
      - public.outbox
      - name: '"OutboxMessages"'
        columns: {id: '"Id"', aggregate_type: '"AggregateType"', aggregate_id: '"AggregateId"', type: '"Type"',
                  payload: '"Payload"'}
        topic: "messages.{\"AggregateType\"}"
        key: "{\"AggregateId\"}-{\"Type\"}"
      - name: billing.outbox
        columns: {aggregate_id: invoice}
)";

std::string errorsOf(const std::string& yaml) {
    auto parsed = config::parseConfig(yaml, "t.yaml", noEnv);
    REQUIRE_FALSE(parsed.has_value());
    std::string all;
    for (const auto& e : parsed.error()) all += e.toString() + "\n";
    return all;
}

Value text(std::string_view s) {
    return Value{ValueKind::Text, s};
}

outbox::ChangeContext ctx() {
    outbox::ChangeContext c;
    c.lsn = cdc::Lsn{0x1000};
    c.commit_lsn = cdc::Lsn{0x2000};
    c.xid = cdc::Xid{777};
    c.commit_time = cdc::PgTimestamp::fromUnixMicros(1'700'000'000'123'456);
    return c;
}

Relation relation(std::uint32_t id, std::string schema, std::string name, std::vector<std::string> columns) {
    Relation r;
    r.id = RelationId{id};
    r.schema = std::move(schema);
    r.name = std::move(name);
    for (std::size_t i = 0; i < columns.size(); ++i) {
        r.columns.push_back(Column{i == 0 ? std::uint8_t{1} : std::uint8_t{0}, columns[i],
                                   i + 1 == columns.size() ? outbox::oid::kJsonb : outbox::oid::kText, -1});
    }
    return r;
}

}  // namespace

TEST_CASE("a table given as a map has its own columns, topic and key; the others use the global ones",
          "[config][pertable]") {
    auto parsed = config::parseConfig(withTables(kTwoTables), "t.yaml", noEnv);
    REQUIRE(parsed.has_value());
    const auto& c = *parsed;
    REQUIRE(c.outbox.tables.size() == 3);
    CHECK(c.outbox.tables[0] == config::TableName{"public", "outbox"});
    CHECK(c.outbox.tables[1] == config::TableName{"public", "OutboxMessages"});
    CHECK(c.outbox.tables[2] == config::TableName{"billing", "outbox"});
    CHECK(c.outbox.overrides.size() == 2);

    const auto plain = config::tableRouting(c, c.outbox.tables[0]);
    CHECK(plain.columns.id == "id");
    CHECK(plain.columns.payload == "body");
    CHECK(plain.topic == &c.routing.topic);
    CHECK(plain.key == &c.routing.key);

    const auto own = config::tableRouting(c, c.outbox.tables[1]);
    CHECK(own.columns.id == "Id");
    CHECK(own.columns.aggregate_type == "AggregateType");
    CHECK(own.columns.aggregate_id == "AggregateId");
    CHECK(own.columns.type == "Type");
    CHECK(own.columns.payload == "Payload");
    CHECK(own.columns.timestamp.empty());
    CHECK(own.topic->source == "messages.{\"AggregateType\"}");
    CHECK(own.key->source == "{\"AggregateId\"}-{\"Type\"}");

    // Each column the entry does not set falls back to source.outbox.columns, key by key.
    const auto partial = config::tableRouting(c, c.outbox.tables[2]);
    CHECK(partial.columns.id == "id");
    CHECK(partial.columns.aggregate_id == "invoice");
    CHECK(partial.columns.payload == "body");
    CHECK(partial.topic == &c.routing.topic);
    CHECK(partial.key == &c.routing.key);
}

TEST_CASE("per-table entries are checked: unknown keys, a missing name, a table listed twice, bad templates",
          "[config][pertable]") {
    CHECK_THAT(errorsOf(withTables("    tables: [{name: a, colums: {id: x}}]")),
               Catch::Contains("unknown key 'source.outbox.tables.colums'; did you mean 'columns'?"));
    CHECK_THAT(errorsOf(withTables("    tables: [{name: a, columns: {ids: x}}]")),
               Catch::Contains("unknown key 'source.outbox.tables.columns.ids'; did you mean 'id'?"));
    CHECK_THAT(errorsOf(withTables("    tables: [{columns: {id: x}}]")),
               Catch::Contains("missing required key 'source.outbox.tables.name'"));
    CHECK_THAT(errorsOf(withTables("    tables: [public.outbox, {name: outbox, topic: t}]")),
               Catch::Contains("source.outbox.tables: 'public.outbox' is listed twice; keep only one"));
    CHECK_THAT(errorsOf(withTables("    tables: [{name: a, topic: \"bad topic {x}\"}]")),
               Catch::Contains("source.outbox.tables.topic: \"bad topic {x}\" has characters a Kafka topic"));
    CHECK_THAT(errorsOf(withTables("    tables: [{name: a, topic: \"t.{$1}\"}]")),
               Catch::Contains("source.outbox.tables.topic: {$1} names a regex group, but routing.topic_regex is "
                               "not set"));
    CHECK_THAT(errorsOf(withTables("    tables: [{name: a, key: \"{$1}\"}]")),
               Catch::Contains("source.outbox.tables.key: {$group} placeholders belong in routing.topic only"));
    CHECK_THAT(errorsOf(withTables("    tables: [{name: a, columns: {id: '\"unclosed'}}]")),
               Catch::Contains("source.outbox.tables.columns.id:"));
    CHECK_THAT(errorsOf(withTables("    tables: [{name: [a]}]")),
               Catch::Contains("source.outbox.tables.name: expected a string"));
    CHECK_THAT(errorsOf(withTables("    tables: [[a]]")),
               Catch::Contains("source.outbox.tables: each entry must be a string"));
}

TEST_CASE("the router routes each table's rows with its own column names, topic and key", "[router][pertable]") {
    auto parsed = config::parseConfig(withTables(kTwoTables), "t.yaml", noEnv);
    REQUIRE(parsed.has_value());
    outbox::Router router(*parsed);
    // Each table has only its own column names: resolving with the other table's would fail.
    auto plain = router.onRelation(relation(100, "public", "outbox", {"id", "aggregatetype", "aggregateid", "type", "body"}));
    REQUIRE(plain);
    CHECK(*plain);
    auto own = router.onRelation(
        relation(200, "public", "OutboxMessages", {"Id", "AggregateType", "AggregateId", "Type", "Payload"}));
    REQUIRE(own);
    CHECK(*own);

    Insert a;
    a.relation = RelationId{100};
    a.new_tuple = {text("5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"), text("user"), text("42"), text("UserRegistered"),
                   text(R"({"n": 1})")};
    outbox::OutboxEvent ev;
    REQUIRE(router.route(a, ctx(), ev));
    CHECK(ev.topic == "outbox.event.user");
    CHECK(ev.key == "42");
    CHECK(ev.id == "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70");
    CHECK(ev.type == "UserRegistered");

    Insert b;
    b.relation = RelationId{200};
    b.new_tuple = {text("7c2a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f71"), text("order"), text("7"), text("OrderPlaced"),
                   text(R"({"n": 2})")};
    REQUIRE(router.route(b, ctx(), ev));
    CHECK(ev.topic == "messages.order");
    CHECK(ev.key == "7-OrderPlaced");
    CHECK(ev.id == "7c2a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f71");
    CHECK(ev.type == "OrderPlaced");
    CHECK(ev.aggregate_type == "order");
}

TEST_CASE("a table missing a column of its own settings is an error naming the column and the table",
          "[router][pertable]") {
    auto parsed = config::parseConfig(withTables(kTwoTables), "t.yaml", noEnv);
    REQUIRE(parsed.has_value());
    outbox::Router router(*parsed);
    // The global column names are not enough for a table with columns of its own.
    auto r = router.onRelation(
        relation(200, "public", "OutboxMessages", {"id", "aggregatetype", "aggregateid", "type", "body"}));
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message,
               Catch::Contains("public.OutboxMessages has no column 'Id' (configured as columns.id of the entry of "
                               "public.OutboxMessages in source.outbox.tables)"));
    // billing.outbox takes aggregate_id from its entry and the rest from source.outbox.columns.
    auto billing = router.onRelation(
        relation(300, "billing", "outbox", {"id", "aggregatetype", "aggregateid", "type", "body"}));
    REQUIRE_FALSE(billing);
    CHECK_THAT(billing.error().message, Catch::Contains("billing.outbox has no column 'invoice'"));
    // A column the entry does not set is named by its global key.
    auto no_id = router.onRelation(relation(301, "billing", "outbox", {"aggregatetype", "invoice", "type", "body"}));
    REQUIRE_FALSE(no_id);
    CHECK_THAT(no_id.error().message,
               Catch::Contains("billing.outbox has no column 'id' (configured as source.outbox.columns.id)"));
    // A table's own template is named as the entry's, not as routing.topic.
    auto no_template_column = router.onRelation(
        relation(201, "public", "OutboxMessages", {"Id", "AggregateType", "AggregateId", "Payload"}));
    REQUIRE_FALSE(no_template_column);
    CHECK_THAT(no_template_column.error().message, Catch::Contains("has no column 'Type'"));
    auto template_only = router.onRelation(relation(
        202, "public", "OutboxMessages", {"Id", "AggregateType", "AggregateId", "Type", "Payload"}));
    REQUIRE(template_only);
}

TEST_CASE("a table's own template naming a column the table lacks is named as the entry's", "[router][pertable]") {
    auto parsed = config::parseConfig(
        withTables("    tables: [{name: a, topic: 'a.{region}'}]"), "t.yaml", noEnv);
    REQUIRE(parsed.has_value());
    outbox::Router router(*parsed);
    auto r = router.onRelation(relation(100, "public", "a", {"id", "aggregatetype", "aggregateid", "type", "body"}));
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message,
               Catch::Contains("topic 'a.{region}' of the entry of public.a in source.outbox.tables names column "
                               "'region'"));
}
