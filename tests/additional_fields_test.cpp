// routing.additional_fields (header, envelope and partition placements), routing.header_encoding
// and routing.expand_json_payload: the configuration reader's checks, the router's records and
// the JSON text they are written with.

#include <catch2/catch.hpp>

#include "config/config.h"
#include "outbox/json_text.h"
#include "outbox/router.h"
#include "outboxd/v1/event.pb.h"

using namespace outboxd;
using cdc::pgoutput::Column;
using cdc::pgoutput::Insert;
using cdc::pgoutput::Relation;
using cdc::pgoutput::RelationId;
using cdc::pgoutput::Value;
using cdc::pgoutput::ValueKind;

namespace {

constexpr std::uint32_t kInt4 = 23;
constexpr std::uint32_t kBool = 16;
constexpr std::uint32_t kUuid = 2950;

std::optional<std::string> noEnv(std::string_view) { return std::nullopt; }

std::string withRouting(std::string_view routing) {
    return std::string(R"(
source:
  postgres:
    dsn: "host=db"
sink:
  kafka:
    brokers: "kafka:9092"
routing:
)") + std::string(routing);
}

std::vector<config::ConfigError> errorsOf(std::string_view routing) {
    auto r = config::parseConfig(withRouting(routing), "t.yaml", noEnv);
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

config::Config parsed(std::string_view routing) {
    auto r = config::parseConfig(withRouting(routing), "t.yaml", noEnv);
    if (!r) {
        for (const auto& e : r.error()) INFO(e.toString());
        FAIL("configuration refused");
    }
    return *r;
}

// The outbox table with three more columns: traceparent (text), version (int4), part (int4).
Relation relation() {
    Relation r;
    r.id = RelationId{16384};
    r.schema = "public";
    r.name = "outbox";
    r.columns = {Column{1, "id", kUuid, -1},        Column{0, "aggregatetype", 25, -1},
                 Column{0, "aggregateid", 25, -1},  Column{0, "type", 25, -1},
                 Column{0, "payload", outbox::oid::kJsonb, -1}, Column{0, "traceparent", 25, -1},
                 Column{0, "version", kInt4, -1},   Column{0, "part", kInt4, -1},
                 Column{0, "flag", kBool, -1}};
    return r;
}

Value text(std::string_view s) { return Value{ValueKind::Text, s}; }
Value null() { return Value{ValueKind::Null, {}}; }

Insert row(Value traceparent = text("00-abc-01"), Value version = text("3"), Value part = text("2"),
           Value payload = text(R"({"name": "ana", "tags": ["a b", 1]})")) {
    Insert ins;
    ins.relation = RelationId{16384};
    ins.new_tuple = {text("5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"), text("user"), text("42"), text("UserRegistered"),
                     payload, traceparent, version, part, text("t")};
    return ins;
}

outbox::ChangeContext ctx() {
    outbox::ChangeContext c;
    c.lsn = cdc::Lsn{0x1000};
    c.commit_lsn = cdc::Lsn{0x2000};
    c.xid = cdc::Xid{777};
    c.commit_time = cdc::PgTimestamp::fromUnixMicros(1'700'000'000'123'456);
    return c;
}

outbox::OutboxEvent routed(const config::Config& config, const Insert& insert) {
    outbox::Router router(config);
    REQUIRE(router.onRelation(relation()));
    outbox::OutboxEvent ev;
    auto ok = router.route(insert, ctx(), ev);
    if (!ok) FAIL(ok.error().message);
    return ev;
}

}  // namespace

TEST_CASE("additional_fields are read as {column, placement, as}; as defaults to the column", "[config][fields]") {
    const auto c = parsed(R"(  additional_fields:
    - {column: tracingspancontext, placement: header, as: traceparent}
    - {column: EventVersion, placement: envelope}
    - column: '"Part"'
      placement: partition
)");
    REQUIRE(c.routing.additional_fields.size() == 3);
    CHECK(c.routing.additional_fields[0].column == "tracingspancontext");
    CHECK(c.routing.additional_fields[0].placement == config::Placement::Header);
    CHECK(c.routing.additional_fields[0].alias == "traceparent");
    CHECK(c.routing.additional_fields[1].column == "eventversion");
    CHECK(c.routing.additional_fields[1].placement == config::Placement::Envelope);
    CHECK(c.routing.additional_fields[1].alias == "eventversion");
    CHECK(c.routing.additional_fields[2].column == "Part");
    CHECK(c.routing.additional_fields[2].placement == config::Placement::Partition);
    CHECK(c.routing.header_encoding == config::HeaderEncoding::Bare);
    CHECK_FALSE(c.routing.expand_json_payload);
    CHECK(parsed("  header_encoding: json\n").routing.header_encoding == config::HeaderEncoding::Json);
    CHECK(parsed("  additional_fields: []\n").routing.additional_fields.empty());
}

TEST_CASE("bad additional_fields are refused with the line and what to do", "[config][fields]") {
    SECTION("an unknown placement") {
        const auto e = errorsOf("  additional_fields:\n    - {column: a, placement: headr}\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].line == 10);
        CHECK(e[0].message ==
              "routing.additional_fields.placement: invalid value 'headr'; use one of header, envelope, partition "
              "(did you mean 'header'?)");
    }
    SECTION("two fields with one alias") {
        const auto e = errorsOf(
            "  additional_fields:\n    - {column: a, placement: header, as: x}\n    - {column: b, placement: header, as: x}\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].line == 11);
        CHECK(e[0].message == "routing.additional_fields: two header fields are named 'x' (the first at line 10); "
                              "give one another name with `as`");
    }
    SECTION("an alias defaulting to another field's") {
        const auto e = errorsOf(
            "  additional_fields:\n    - {column: a, placement: envelope}\n    - {column: b, placement: envelope, as: a}\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.starts_with("routing.additional_fields: two envelope fields are named 'a'"));
    }
    SECTION("two partition placements") {
        const auto e = errorsOf(
            "  additional_fields:\n    - {column: a, placement: partition}\n    - {column: b, placement: partition}\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].message == "routing.additional_fields: a second partition field ('b'; the first, 'a', is at line "
                              "10); a record has one partition, keep one");
    }
    SECTION("a header named id, the event id's") {
        const auto e = errorsOf("  additional_fields:\n    - {column: eventid, placement: header, as: id}\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.starts_with("routing.additional_fields: header 'id' is one outboxd sets itself"));
    }
    SECTION("a header named type, aggregate_type or content-type is accepted: it replaces outboxd's own") {
        const auto c = parsed("  additional_fields:\n    - {column: eventtype, placement: header, as: type}\n"
                              "    - {column: a, placement: header, as: aggregate_type}\n"
                              "    - {column: c, placement: header, as: content-type}\n");
        REQUIRE(c.routing.additional_fields.size() == 3);
        CHECK(c.routing.additional_fields[0].alias == "type");
        CHECK(c.routing.additional_fields[2].alias == "content-type");
    }
    SECTION("an envelope member named payload") {
        const auto e = errorsOf("  additional_fields:\n    - {column: payload2, placement: envelope, as: payload}\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.starts_with("routing.additional_fields: envelope member 'payload' holds the payload"));
    }
    SECTION("a missing column or placement, an unknown key") {
        const auto e = errorsOf("  additional_fields:\n    - {placement: header}\n    - {column: a}\n"
                                "    - {column: a, placement: header, alias: x}\n");
        REQUIRE(e.size() == 3);
        CHECK(e[0].message.starts_with("missing required key 'routing.additional_fields.column'"));
        CHECK(e[1].message.starts_with("missing required key 'routing.additional_fields.placement'"));
        CHECK(e[2].message.starts_with("unknown key 'routing.additional_fields.alias'"));
        CHECK(e[2].message.find("did you mean 'as'?") == std::string::npos);
        CHECK(e[2].message.find("column, placement, as") != std::string::npos);
    }
    SECTION("not a list, an entry not a map") {
        CHECK(errorsOf("  additional_fields: {column: a}\n")[0].message.starts_with(
            "routing.additional_fields: expected a list of {column: C, placement: header|envelope|partition, as: "
            "ALIAS} maps, got a map"));
        CHECK(errorsOf("  additional_fields: [a]\n")[0].message.starts_with(
            "routing.additional_fields: each entry must be a map"));
    }
    SECTION("expand_json_payload in envelope mode") {
        const auto e = errorsOf("  expand_json_payload: true\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].message.starts_with("routing.expand_json_payload: applies to routing.value: payload only"));
        CHECK(parsed("  value: payload\n  expand_json_payload: true\n").routing.expand_json_payload);
    }
}

TEST_CASE("a field's column missing from the outbox table stops with the column and table named", "[router][fields]") {
    auto config = parsed("  additional_fields: [{column: tracing, placement: header}]\n");
    outbox::Router router(config);
    auto r = router.onRelation(relation());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::MappedColumnMissing);
    CHECK(r.error().message.starts_with(
        "outbox table public.outbox has no column 'tracing' (named in routing.additional_fields)"));
}

TEST_CASE("header fields are Kafka headers of the column's text; a NULL one has a null value", "[router][fields]") {
    auto config = parsed("  additional_fields:\n    - {column: traceparent, placement: header}\n"
                         "    - {column: version, placement: header, as: v}\n");
    auto ev = routed(config, row());
    REQUIRE(ev.field_headers.size() == 2);
    CHECK(ev.field_headers[0] == std::pair<std::string, std::optional<std::string>>{"traceparent", "00-abc-01"});
    CHECK(ev.field_headers[1] == std::pair<std::string, std::optional<std::string>>{"v", "3"});
    CHECK_FALSE(ev.json_headers);
    CHECK(ev.partition == -1);
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.additional_fields().empty());

    ev = routed(config, row(null()));
    REQUIRE(ev.field_headers.size() == 2);
    CHECK(ev.field_headers[0].first == "traceparent");
    CHECK_FALSE(ev.field_headers[0].second.has_value());
}

TEST_CASE("header_encoding json JSON-encodes header fields by the column's type", "[router][fields]") {
    auto config = parsed("  header_encoding: json\n  additional_fields:\n"
                         "    - {column: traceparent, placement: header}\n"
                         "    - {column: version, placement: header}\n"
                         "    - {column: flag, placement: header}\n");
    auto ev = routed(config, row());
    CHECK(ev.json_headers);
    CHECK_FALSE(ev.id_is_number);  // a uuid id: the sink writes "5b1a..." with the quotes
    REQUIRE(ev.field_headers.size() == 3);
    CHECK(ev.field_headers[0].second == std::optional<std::string>("\"00-abc-01\""));
    CHECK(ev.field_headers[1].second == std::optional<std::string>("3"));
    CHECK(ev.field_headers[2].second == std::optional<std::string>("true"));
    ev = routed(config, row(null()));
    CHECK(ev.field_headers[0].second == std::optional<std::string>("null"));
}

TEST_CASE("a partition field's integer is the record's partition; anything else is an invalid row", "[router][fields]") {
    auto config = parsed("  additional_fields: [{column: part, placement: partition}]\n");
    CHECK(routed(config, row()).partition == 2);
    CHECK(routed(config, row(text("t"), text("1"), null())).partition == -1);

    outbox::Router router(config);
    REQUIRE(router.onRelation(relation()));
    for (const auto* bad : {"-1", "2147483648", "x", "1.5", ""}) {
        INFO(bad);
        outbox::OutboxEvent ev;
        auto r = router.route(row(text("t"), text("1"), text(bad)), ctx(), ev);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::InvalidRow);
        CHECK(router.lastInvalidReason() == "bad_partition");
        CHECK(r.error().message.find(fmt::format("column 'part' (routing.additional_fields, placement partition) "
                                                 "holds '{}', which is not a partition number",
                                                 bad)) != std::string::npos);
    }
    // The row's dead-letter record goes to the dead-letter topic's own partitioning.
    outbox::OutboxEvent ev;
    REQUIRE(router.route(row(), ctx(), ev));
    REQUIRE(router.deadLetter(row(), ctx(), "x", ev));
    CHECK(ev.partition == -1);
    CHECK(ev.field_headers.empty());
}

TEST_CASE("envelope fields in envelope mode go into the event's additional_fields map", "[router][fields]") {
    auto config = parsed("  additional_fields:\n    - {column: version, placement: envelope, as: eventVersion}\n"
                         "    - {column: traceparent, placement: envelope}\n");
    auto ev = routed(config, row(null()));
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.additional_fields().size() == 1);
    CHECK(decoded.additional_fields().at("eventVersion") == "3");
    CHECK(ev.field_headers.empty());
}

TEST_CASE("envelope fields in payload mode make the value JsonConverter's object of the router's struct", "[router][fields]") {
    auto config = parsed("  value: payload\n  additional_fields:\n"
                         "    - {column: version, placement: envelope, as: eventVersion}\n"
                         "    - {column: traceparent, placement: envelope}\n"
                         "    - {column: type, placement: envelope, as: eventType}\n");
    // Without expand_json_payload the payload is a JSON string of its text.
    CHECK(routed(config, row()).value ==
          R"({"payload":"{\"name\": \"ana\", \"tags\": [\"a b\", 1]}","eventVersion":3,"traceparent":"00-abc-01","eventType":"UserRegistered"})");
    CHECK(routed(config, row(null(), null(), text("1"), null())).value ==
          R"({"payload":null,"eventVersion":null,"traceparent":null,"eventType":"UserRegistered"})");
    // With it, the JSON itself, compact.
    config.routing.expand_json_payload = true;
    CHECK(routed(config, row()).value ==
          R"({"payload":{"name":"ana","tags":["a b",1]},"eventVersion":3,"traceparent":"00-abc-01","eventType":"UserRegistered"})");
    // A tombstone stays a null value with its headers.
    config.routing.tombstone_on_empty_payload = true;
    auto ev = routed(config, row(text("t"), text("1"), text("1"), null()));
    CHECK(ev.value_is_null);
}

TEST_CASE("expand_json_payload alone writes the payload as compact JSON; a payload that is not JSON stays as it is",
          "[router][fields]") {
    auto config = parsed("  value: payload\n  expand_json_payload: true\n");
    CHECK(routed(config, row()).value == R"({"name":"ana","tags":["a b",1]})");
    // Debezium expands only text starting with { or [, and keeps what does not parse as it is.
    CHECK(routed(config, row(text("t"), text("1"), text("1"), text(R"("just a string")"))).value ==
          R"("just a string")");
    CHECK(routed(config, row(text("t"), text("1"), text("1"), text("{not json"))).value == "{not json");
}

TEST_CASE("logical messages carry additional fields as members of their content", "[router][fields][messages]") {
    auto config = parsed("  additional_fields: [{column: traceparent, placement: header}]\n");
    config.outbox.messages.prefixes = {"outbox"};
    outbox::Router router(config);
    cdc::pgoutput::LogicalMessage message;
    message.transactional = true;
    message.prefix = "outbox";
    const std::string content =
        R"({"id": "e1", "aggregatetype": "user", "aggregateid": "7", "type": "T", "payload": {}, "traceparent": "00-x"})";
    message.content = std::span(reinterpret_cast<const std::byte*>(content.data()), content.size());
    Insert insert;
    REQUIRE(router.messageRow(message, ctx(), insert));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(insert, ctx(), ev));
    REQUIRE(ev.field_headers.size() == 1);
    CHECK(ev.field_headers[0].second == std::optional<std::string>("00-x"));
}

TEST_CASE("JSON text is written as Jackson writes it", "[fields][json]") {
    std::string out;
    outbox::appendJsonString(out, "a\"b\\c\n\t\x01é");
    CHECK(out == "\"a\\\"b\\\\c\\n\\t\\u0001é\"");
    out.clear();
    outbox::appendJsonBase64(out, "hello");
    CHECK(out == "\"aGVsbG8=\"");
    out.clear();
    outbox::appendJsonBase64(out, "hell");
    CHECK(out == "\"aGVsbA==\"");
    out.clear();
    outbox::appendColumnJson(out, 701, "NaN");
    outbox::appendColumnJson(out, 701, "1.5");
    outbox::appendColumnJson(out, 20, "-9");
    outbox::appendColumnJson(out, 17, "\\x68690a");
    outbox::appendColumnJson(out, 1700, "1.50");
    CHECK(out == "\"NaN\"1.5-9\"aGkK\"\"1.50\"");
    outbox::JsonCompactor compactor;
    out.clear();
    CHECK(compactor.append(out, "{ \"a b\" : [1, \"x \\\" y\"] }"));
    CHECK(out == "{\"a b\":[1,\"x \\\" y\"]}");
    CHECK_FALSE(compactor.append(out, "{\"a\": }"));
}
