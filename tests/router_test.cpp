#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "outbox/payload/typed_payloads.h"
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

config::Template tmpl(std::vector<config::Template::Part> parts, std::string source) {
    config::Template t;
    t.source = std::move(source);
    t.parts = std::move(parts);
    return t;
}

config::Config defaultConfig() {
    config::Config c;
    c.routing.topic = tmpl({{false, "outbox.event."}, {true, "aggregatetype"}}, "outbox.event.{aggregatetype}");
    c.routing.key = tmpl({{true, "aggregateid"}}, "{aggregateid}");
    return c;
}

Relation outboxRelation(std::uint32_t id = 16384, std::uint32_t payload_oid = outbox::oid::kJsonb) {
    Relation r;
    r.id = RelationId{id};
    r.schema = "public";
    r.name = "outbox";
    r.columns = {Column{1, "id", 2950, -1},           Column{0, "aggregatetype", 25, -1},
                 Column{0, "aggregateid", 25, -1},    Column{0, "type", 25, -1},
                 Column{0, "payload", payload_oid, -1}};
    return r;
}

Value text(std::string_view s) { return Value{ValueKind::Text, s}; }

Insert row(std::uint32_t rel, std::string_view payload = R"({"name": "ana"})") {
    Insert ins;
    ins.relation = RelationId{rel};
    ins.new_tuple = {text("5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"), text("user"), text("42"), text("UserRegistered"),
                     text(payload)};
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

}  // namespace

TEST_CASE("an outbox row becomes an event with Debezium's default topic, key and headers", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    auto known = router.onRelation(outboxRelation());
    REQUIRE(known);
    REQUIRE(*known);
    outbox::OutboxEvent ev;
    REQUIRE(router.route(row(16384), ctx(), ev));
    CHECK(ev.topic == "outbox.event.user");
    CHECK(ev.key == "42");
    CHECK_FALSE(ev.key_is_null);
    CHECK(ev.id == "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70");
    CHECK(ev.type == "UserRegistered");
    CHECK(ev.aggregate_type == "user");
    CHECK(ev.content_type == "application/json");

    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.id() == ev.id);
    CHECK(decoded.aggregate_type() == "user");
    CHECK(decoded.aggregate_id() == "42");
    CHECK(decoded.type() == "UserRegistered");
    CHECK(decoded.payload() == R"({"name": "ana"})");
    CHECK(decoded.content_type() == "application/json");
    CHECK(decoded.occurred_at().seconds() == 1'700'000'000);
    CHECK(decoded.occurred_at().nanos() == 123'456'000);
    CHECK(decoded.source().lsn() == 0x1000);
    CHECK(decoded.source().commit_lsn() == 0x2000);
    CHECK(decoded.source().xid() == 777);
    CHECK(decoded.source().commit_time().seconds() == 1'700'000'000);
    CHECK(decoded.source().schema() == "public");
    CHECK(decoded.source().table() == "outbox");
}

TEST_CASE("tables not configured are not outbox tables", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    auto rel = outboxRelation(99);
    rel.name = "users";
    auto known = router.onRelation(rel);
    REQUIRE(known);
    CHECK_FALSE(*known);
    CHECK_FALSE(router.isOutbox(RelationId{99}));
}

TEST_CASE("columns are found by name after the relation changes", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    auto rel = outboxRelation();
    REQUIRE(router.onRelation(rel));
    // ALTER TABLE: a column added in front changes positions.
    rel.columns.insert(rel.columns.begin(), Column{0, "tenant", 25, -1});
    REQUIRE(router.onRelation(rel));
    Insert ins = row(16384);
    ins.new_tuple.insert(ins.new_tuple.begin(), text("acme"));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(ins, ctx(), ev));
    CHECK(ev.topic == "outbox.event.user");
    CHECK(ev.key == "42");
}

TEST_CASE("a mapped column missing from the table is an error naming column and table", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    auto rel = outboxRelation();
    rel.columns.erase(rel.columns.begin() + 3);  // drop "type"
    auto known = router.onRelation(rel);
    REQUIRE_FALSE(known);
    CHECK(known.error().kind == ErrorKind::MappedColumnMissing);
    CHECK_THAT(known.error().message, Catch::Contains("'type'") && Catch::Contains("public.outbox"));
}

TEST_CASE("a template column missing from the table is an error", "[router]") {
    auto config = defaultConfig();
    config.routing.topic = tmpl({{true, "region"}}, "{region}");
    outbox::Router router(config);
    auto known = router.onRelation(outboxRelation());
    REQUIRE_FALSE(known);
    CHECK_THAT(known.error().message, Catch::Contains("region"));
}

TEST_CASE("bytea payloads are published as raw bytes", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation(16384, outbox::oid::kBytea)));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(row(16384, "\\x00ff10"), ctx(), ev));
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.payload() == std::string("\x00\xff\x10", 3));
    CHECK(ev.content_type == "application/octet-stream");
}

TEST_CASE("text payloads are text/plain", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation(16384, outbox::oid::kText)));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(row(16384, "hello"), ctx(), ev));
    CHECK(ev.content_type == "text/plain; charset=utf-8");
}

TEST_CASE("rows that cannot become events are errors with the LSN", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    outbox::OutboxEvent ev;
    SECTION("NULL id") {
        auto ins = row(16384);
        ins.new_tuple[0] = Value{ValueKind::Null, {}};
        auto r = router.route(ins, ctx(), ev);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::InvalidRow);
        CHECK_THAT(r.error().message, Catch::Contains("0/1000") && Catch::Contains("'id'"));
    }
    SECTION("NULL in the topic template") {
        auto ins = row(16384);
        ins.new_tuple[1] = Value{ValueKind::Null, {}};
        auto r = router.route(ins, ctx(), ev);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("NULL"));
    }
    SECTION("a topic Kafka would refuse") {
        auto ins = row(16384);
        ins.new_tuple[1] = text("user accounts/v1");
        auto r = router.route(ins, ctx(), ev);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("not a valid Kafka topic"));
    }
    SECTION("bad bytea") {
        REQUIRE(router.onRelation(outboxRelation(16384, outbox::oid::kBytea)));
        auto r = router.route(row(16384, "\\x0"), ctx(), ev);
        REQUIRE_FALSE(r);
    }
}

TEST_CASE("a NULL aggregate id gives a null key", "[router]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    auto ins = row(16384);
    ins.new_tuple[2] = Value{ValueKind::Null, {}};
    outbox::OutboxEvent ev;
    REQUIRE(router.route(ins, ctx(), ev));
    CHECK(ev.key_is_null);
}

TEST_CASE("the timestamp column gives the time the event occurred", "[router]") {
    auto config = defaultConfig();
    config.outbox.columns.timestamp = "created_at";
    outbox::Router router(config);
    auto rel = outboxRelation();
    rel.columns.push_back(Column{0, "created_at", outbox::oid::kTimestamptz, -1});
    REQUIRE(router.onRelation(rel));
    auto ins = row(16384);
    ins.new_tuple.push_back(text("2026-11-27 02:25:29.5+01"));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(ins, ctx(), ev));
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    // 2026-11-27T01:25:29.5Z
    CHECK(decoded.occurred_at().seconds() == 1795742729);
    CHECK(decoded.occurred_at().nanos() == 500'000'000);
}

TEST_CASE("a timestamp column value that is not a date falls back to the commit time", "[router]") {
    auto config = defaultConfig();
    config.outbox.columns.timestamp = "created_at";
    outbox::Router router(config);
    auto rel = outboxRelation();
    rel.columns.push_back(Column{0, "created_at", outbox::oid::kTimestamptz, -1});
    REQUIRE(router.onRelation(rel));
    auto ins = row(16384);
    ins.new_tuple.push_back(text("infinity"));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(ins, ctx(), ev));
    CHECK(ev.occurred_from_commit_time);
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.occurred_at().seconds() == 1'700'000'000);
    ins.new_tuple.back() = text("2026-11-27 02:25:29+00");
    REQUIRE(router.route(ins, ctx(), ev));
    CHECK_FALSE(ev.occurred_from_commit_time);
}

TEST_CASE("timestamps in PostgreSQL's ISO output parse to Unix microseconds", "[router]") {
    CHECK(outbox::parseTimestamp("1970-01-01 00:00:00").value() == 0);
    CHECK(outbox::parseTimestamp("2000-01-01 00:00:00+00").value() == 946684800LL * 1'000'000);
    CHECK(outbox::parseTimestamp("2000-01-01 01:00:00+01").value() == 946684800LL * 1'000'000);
    CHECK(outbox::parseTimestamp("2000-01-01 00:00:00.000001-00:30").value() == (946684800LL + 1800) * 1'000'000 + 1);
    CHECK(outbox::parseTimestamp("2024-02-29T12:00:00Z").value() == 1709208000LL * 1'000'000);
    CHECK_FALSE(outbox::parseTimestamp("yesterday"));
    CHECK_FALSE(outbox::parseTimestamp("2024-13-01 00:00:00"));
    CHECK_FALSE(outbox::parseTimestamp("2024-01-01 00:00:00 junk"));
}

TEST_CASE("bytea hex decoding", "[router]") {
    CHECK(outbox::decodeByteaHex("\\x").value().empty());
    CHECK(outbox::decodeByteaHex("\\x4142").value() == "AB");
    CHECK_FALSE(outbox::decodeByteaHex("4142"));
    CHECK_FALSE(outbox::decodeByteaHex("\\x414"));
    CHECK_FALSE(outbox::decodeByteaHex("\\x41zz"));
}

TEST_CASE("a router that routed other rows gives the same bytes as a fresh one", "[router]") {
    auto config = defaultConfig();
    outbox::Router used(config);
    REQUIRE(used.onRelation(outboxRelation()));
    outbox::OutboxEvent scratch;
    // A long row first, so every reused buffer is larger than what follows.
    const std::string big_payload(4096, 'x');  // the row's values are views: keep it alive
    Insert big = row(16384, big_payload);
    REQUIRE(used.route(big, ctx(), scratch));
    Insert nulls = row(16384);
    nulls.new_tuple[2] = Value{ValueKind::Null, {}};  // aggregate id
    nulls.new_tuple[3] = Value{ValueKind::Null, {}};  // type
    nulls.new_tuple[4] = Value{ValueKind::Null, {}};  // payload
    for (const Insert* ins : {&nulls, &big}) {
        outbox::Router fresh(config);
        REQUIRE(fresh.onRelation(outboxRelation()));
        outbox::OutboxEvent a;
        outbox::OutboxEvent b;
        REQUIRE(used.route(*ins, ctx(), a));
        REQUIRE(fresh.route(*ins, ctx(), b));
        CHECK(a.value == b.value);
        CHECK(a.key == b.key);
        CHECK(a.topic == b.topic);
    }
}

namespace {

std::unique_ptr<outbox::payload::TypedPayloads> typedSet() {
    std::ifstream in(OUTBOXD_TEST_DESCRIPTORS, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream bytes;
    bytes << in.rdbuf();
    outbox::payload::TypedPayloadOptions options;
    options.types = {{"UserRegistered", "outboxd.test.v1.UserRegistered"}};
    auto set = outbox::payload::TypedPayloads::load(bytes.str(), "events_test.binpb", options);
    REQUIRE(set.has_value());
    return std::move(*set);
}

}  // namespace

TEST_CASE("a typed event's JSON payload is published as its protobuf message", "[router][payload]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    auto set = typedSet();
    router.setTypedPayloads(set.get());
    outbox::OutboxEvent ev;
    REQUIRE(router.route(row(16384, R"({"userId": "u-1"})"), ctx(), ev));
    CHECK(ev.content_type == "application/x-protobuf; messageType=outboxd.test.v1.UserRegistered");
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.content_type() == ev.content_type);
    CHECK(decoded.payload() == std::string("\x0a\x03u-1", 5));

    // A type the set does not list passes as it is (untyped: pass, the default).
    Insert other = row(16384, R"({"x": 1})");
    other.new_tuple[3] = text("UserDeleted");
    REQUIRE(router.route(other, ctx(), ev));
    CHECK(ev.content_type == "application/json");
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.payload() == R"({"x": 1})");

    // Without the set (reloaded away), payloads pass as they are again.
    router.setTypedPayloads(nullptr);
    REQUIRE(router.route(row(16384, R"({"userId": "u-1"})"), ctx(), ev));
    CHECK(ev.content_type == "application/json");
}

TEST_CASE("a payload that is not its type, or an unlisted type with untyped: fail, is an invalid row", "[router][payload]") {
    auto config = defaultConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    auto set = typedSet();
    router.setTypedPayloads(set.get());
    outbox::OutboxEvent ev;
    auto bad = router.route(row(16384, R"({"userId": 5, "colour": "red"})"), ctx(), ev);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == ErrorKind::InvalidRow);
    CHECK(router.lastInvalidReason() == "payload_type");
    CHECK_THAT(bad.error().message, Catch::Contains("5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"));
    CHECK_THAT(bad.error().message, Catch::Contains("column 'payload'"));
    CHECK_THAT(bad.error().message, Catch::Contains("0/1000"));
    CHECK_THAT(bad.error().message, Catch::Contains("public.outbox"));
    CHECK_THAT(bad.error().message,
               Catch::Contains("SELECT * FROM public.outbox WHERE id = '5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70'"));

    config.payload.protobuf.untyped = config::Untyped::Fail;
    Insert other = row(16384);
    other.new_tuple[3] = text("UserDeleted");
    auto untyped = router.route(other, ctx(), ev);
    REQUIRE_FALSE(untyped.has_value());
    CHECK(router.lastInvalidReason() == "untyped");
    CHECK_THAT(untyped.error().message, Catch::Contains("'UserDeleted'"));
}

TEST_CASE("an invalid row's dead-letter record keeps its key, bytes and says what was wrong", "[router][payload]") {
    auto config = defaultConfig();
    config.invalid_rows.dead_letter_topic = "auth.dead-letter";
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    Insert ins = row(16384, R"({"name": "ana"})");
    ins.new_tuple[1] = Value{ValueKind::Null, {}};  // aggregatetype NULL: the topic cannot render
    outbox::OutboxEvent ev;
    auto routed = router.route(ins, ctx(), ev);
    REQUIRE_FALSE(routed.has_value());
    CHECK(router.lastInvalidReason() == "null_topic");
    REQUIRE(router.deadLetter(ins, ctx(), routed.error().message, ev));
    CHECK(ev.topic == "auth.dead-letter");
    CHECK(ev.key == "42");
    CHECK_FALSE(ev.key_is_null);
    CHECK(ev.value == R"({"name": "ana"})");
    CHECK(ev.id == "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70");
    CHECK(ev.type == "UserRegistered");
    CHECK(ev.aggregate_type.empty());
    CHECK(ev.content_type.empty());
    REQUIRE(ev.extra_headers.size() == 3);
    CHECK(ev.extra_headers[0].first == "outboxd.error");
    CHECK(ev.extra_headers[0].second == routed.error().message);
    CHECK(ev.extra_headers[1] == std::pair<std::string, std::string>{"outboxd.lsn", "0/1000"});
    CHECK(ev.extra_headers[2] == std::pair<std::string, std::string>{"outboxd.table", "public.outbox"});

    // The next good row carries none of the dead-letter headers.
    REQUIRE(router.route(row(16384), ctx(), ev));
    CHECK(ev.extra_headers.empty());
    CHECK(ev.topic == "outbox.event.user");

    // A bytea payload is dead-lettered as its bytes.
    auto rel = outboxRelation(16385, outbox::oid::kBytea);
    REQUIRE(router.onRelation(rel));
    Insert bin = row(16385, "\\x00ff");
    bin.new_tuple[1] = Value{ValueKind::Null, {}};
    REQUIRE_FALSE(router.route(bin, ctx(), ev).has_value());
    REQUIRE(router.deadLetter(bin, ctx(), "why", ev));
    CHECK(ev.value == std::string("\x00\xff", 2));
}

TEST_CASE("with routing.value payload the record value is the payload alone, as Debezium sends it", "[router]") {
    auto config = defaultConfig();
    config.routing.value = config::ValueMode::Payload;
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    outbox::OutboxEvent ev;
    // jsonb: the text exactly as PostgreSQL prints it; headers and key as in envelope mode
    REQUIRE(router.route(row(16384, R"({"name": "ana", "n": [1, 2]})"), ctx(), ev));
    CHECK(ev.value == R"({"name": "ana", "n": [1, 2]})");
    CHECK_FALSE(ev.value_is_null);
    CHECK(ev.id == "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70");
    CHECK(ev.type == "UserRegistered");
    CHECK(ev.aggregate_type == "user");
    CHECK(ev.content_type == "application/json");
    CHECK(ev.topic == "outbox.event.user");
    CHECK(ev.key == "42");

    // a NULL payload is a null value; an empty text payload an empty one
    Insert null_row = row(16384);
    null_row.new_tuple[4] = Value{ValueKind::Null, {}};
    REQUIRE(router.route(null_row, ctx(), ev));
    CHECK(ev.value_is_null);
    CHECK(ev.value.empty());
    REQUIRE(router.route(row(16384, ""), ctx(), ev));
    CHECK_FALSE(ev.value_is_null);
    CHECK(ev.value.empty());

    // a typed event's value is the binary message itself
    auto set = typedSet();
    router.setTypedPayloads(set.get());
    REQUIRE(router.route(row(16384, R"({"userId": "u-1"})"), ctx(), ev));
    CHECK(ev.value == std::string("\x0a\x03u-1", 5));
    CHECK(ev.content_type == "application/x-protobuf; messageType=outboxd.test.v1.UserRegistered");

    // the envelope mode still sends the envelope (and clears the null flag of the event reused)
    REQUIRE(router.route(null_row, ctx(), ev));
    REQUIRE(ev.value_is_null);
    auto envelope_config = defaultConfig();
    outbox::Router envelope_router(envelope_config);
    REQUIRE(envelope_router.onRelation(outboxRelation()));
    REQUIRE(envelope_router.route(row(16384), ctx(), ev));
    CHECK_FALSE(ev.value_is_null);
    outboxd::v1::Event decoded;
    REQUIRE(decoded.ParseFromString(ev.value));
    CHECK(decoded.payload() == R"({"name": "ana"})");
}

TEST_CASE("with routing.value payload a bytea payload is its raw bytes", "[router]") {
    auto config = defaultConfig();
    config.routing.value = config::ValueMode::Payload;
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation(16384, outbox::oid::kBytea)));
    outbox::OutboxEvent ev;
    REQUIRE(router.route(row(16384, "\\x00ff10"), ctx(), ev));
    CHECK(ev.value == std::string("\x00\xff\x10", 3));
    CHECK(ev.content_type == "application/octet-stream");
}

TEST_CASE("with tombstone_on_empty_payload a NULL or blank payload is a null value, in both value modes", "[router]") {
    const auto mode = GENERATE(config::ValueMode::Envelope, config::ValueMode::Payload);
    auto config = defaultConfig();
    config.routing.value = mode;
    config.routing.tombstone_on_empty_payload = true;
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation(16384, outbox::oid::kText)));
    outbox::OutboxEvent ev;
    Insert null_row = row(16384);
    null_row.new_tuple[4] = Value{ValueKind::Null, {}};
    for (const Insert& r : {null_row, row(16384, ""), row(16384, " \n\t ")}) {
        REQUIRE(router.route(r, ctx(), ev));
        CHECK(ev.value_is_null);
        CHECK(ev.key == "42");
        CHECK(ev.id == "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70");
    }
    REQUIRE(router.route(row(16384, "x"), ctx(), ev));
    CHECK_FALSE(ev.value_is_null);
    CHECK_FALSE(ev.value.empty());

    // without the option an empty payload is not a tombstone
    config.routing.tombstone_on_empty_payload = false;
    outbox::Router plain(config);
    REQUIRE(plain.onRelation(outboxRelation(16384, outbox::oid::kText)));
    REQUIRE(plain.route(row(16384, ""), ctx(), ev));
    CHECK_FALSE(ev.value_is_null);
}

TEST_CASE("a logical message's JSON content gives each named member's text", "[router][messages]") {
    outbox::MessageContent content;
    const std::vector<std::string> names{"id", "aggregateid", "payload", "type", "missing", "flag"};
    std::vector<std::optional<std::string>> values;
    const std::string json =
        R"({"id": "a\"b\u00e9", "aggregateid": 12345678901234567890, "payload": [1, {"x": 2.50}] ,
            "type": null, "flag": false, "ignored": {"deep": [1]}, "id": "second"})";
    auto bytes = std::as_bytes(std::span(json.data(), json.size()));
    REQUIRE(content.parse(bytes, names, values));
    REQUIRE(values.size() == names.size());
    CHECK(values[0] == std::optional<std::string>("second"));  // the last of a member named twice
    CHECK(values[1] == std::optional<std::string>("12345678901234567890"));  // exactly as written
    CHECK(values[2] == std::optional<std::string>(R"([1, {"x": 2.50}])"));
    CHECK_FALSE(values[3].has_value());
    CHECK_FALSE(values[4].has_value());
    CHECK(values[5] == std::optional<std::string>("false"));

    const std::string escaped = R"({"id": "a\"b\u00e9"})";
    REQUIRE(content.parse(std::as_bytes(std::span(escaped.data(), escaped.size())), names, values));
    CHECK(values[0] == std::optional<std::string>("a\"b\xc3\xa9"));

    for (std::string bad : {"", "1", R"("text")", "{", R"({"id": 1,})", R"({} {})"}) {
        CAPTURE(bad);
        auto r = content.parse(std::as_bytes(std::span(bad.data(), bad.size())), names, values);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains("not a JSON object"));
    }
}

TEST_CASE("a tombstone is made before typed conversion, and an empty bytea is one", "[router][payload]") {
    auto config = defaultConfig();
    config.routing.tombstone_on_empty_payload = true;
    config.payload.protobuf.untyped = config::Untyped::Fail;
    outbox::Router router(config);
    REQUIRE(router.onRelation(outboxRelation()));
    auto set = typedSet();
    router.setTypedPayloads(set.get());
    outbox::OutboxEvent ev;
    // a listed type with a blank payload: a tombstone, not a payload that fails to convert
    REQUIRE(router.route(row(16384, "  "), ctx(), ev));
    CHECK(ev.value_is_null);
    // an unlisted type with a NULL payload (untyped: fail): a tombstone too
    Insert null_row = row(16384);
    null_row.new_tuple[3] = text("NotListed");
    null_row.new_tuple[4] = Value{ValueKind::Null, {}};
    REQUIRE(router.route(null_row, ctx(), ev));
    CHECK(ev.value_is_null);

    outbox::Router bytes_router(config);
    REQUIRE(bytes_router.onRelation(outboxRelation(16384, outbox::oid::kBytea)));
    Insert empty_bytes = row(16384, "\\x");
    empty_bytes.new_tuple[3] = text("NotListed");
    REQUIRE(bytes_router.route(empty_bytes, ctx(), ev));
    CHECK(ev.value_is_null);
    Insert some_bytes = row(16384, "\\x20");
    some_bytes.new_tuple[3] = text("NotListed");
    config.payload.protobuf.untyped = config::Untyped::Pass;
    REQUIRE(bytes_router.route(some_bytes, ctx(), ev));
    CHECK_FALSE(ev.value_is_null);
}
