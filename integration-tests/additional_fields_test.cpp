// routing.additional_fields and routing.header_encoding on a real PostgreSQL and Kafka: header,
// envelope and partition placements, and JSON-encoded headers, as they arrive at a consumer.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

#include "outboxd/v1/event.pb.h"
#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

void addColumns(Pg& pg) {
    pg.exec("ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN version int, ADD COLUMN part int");
}

void insertRows(Pg& pg) {
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000001', 'user', '42', 'UserUpdated',
                '{"seq": 1, "name": "n1", "nested": {"a": [1, 2]}}', '00-abc-01', 3, 2))");
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000002', 'user', '42', 'UserDeleted',
                '{"seq": 2}', NULL, NULL, 0))");
}

constexpr std::string_view kFields = R"(  additional_fields:
    - {column: traceparent, placement: header}
    - {column: version, placement: envelope, as: eventVersion}
    - {column: part, placement: partition}
)";

}  // namespace

TEST_CASE("additional_fields_and_header_encoding_on_the_wire", "[integration]") {
    // GIVEN an outbox with three more columns, and two relays: payload mode with bare headers and
    // expand_json_payload, envelope mode with JSON-encoded headers
    auto payload_db = Database::create("fields_payload");
    auto envelope_db = Database::create("fields_envelope");
    Pg payload_pg(payload_db.dsn);
    Pg envelope_pg(envelope_db.dsn);
    addColumns(payload_pg);
    addColumns(envelope_pg);
    const int payload_port = freePort();
    const int envelope_port = freePort();
    // (the payload relay also puts the version in a header named type, as Debezium's documented
    // example does with eventType: it takes the place of outboxd's own type header)
    Daemon payload("fields_payload",
                   withLinesAfter(relayConfig(payload_db, "fields_payload", "", payload_port), "  topic:",
                                  std::string("  value: payload\n  expand_json_payload: true\n") + std::string(kFields) +
                                      "    - {column: version, placement: header, as: type}\n"));
    Daemon envelope("fields_envelope",
                    withLinesAfter(relayConfig(envelope_db, "fields_envelope", "", envelope_port), "  topic:",
                                   std::string("  header_encoding: json\n") + std::string(kFields)));
    payload.start();
    envelope.start();
    REQUIRE(eventually([&] { return httpGet(payload_port, "/readyz").status == 200; }, 60s));
    REQUIRE(eventually([&] { return httpGet(envelope_port, "/readyz").status == 200; }, 60s));

    // WHEN a row with every field set and a row with NULL header and envelope fields are written
    insertRows(payload_pg);
    insertRows(envelope_pg);

    // THEN in payload mode: the partition is the column's, the header the column's bare text (a
    // NULL one a header with a null value), the value JsonConverter's object with the payload
    // expanded (compact, in jsonb's key order)
    KafkaReader payload_reader({"fields_payload.user"});
    auto records = payload_reader.readUntil(2, 60s);
    REQUIRE(records.size() == 2);
    std::ranges::sort(records, {}, [](const Record& r) { return r.headers.at("id"); });
    CHECK(records[0].partition == 2);
    CHECK(records[0].headers.at("id") == "00000000-0000-0000-0000-000000000001");
    CHECK(records[0].headers.at("traceparent") == "00-abc-01");
    CHECK(records[0].headers.at("type") == "3");
    // id, type (the field's), aggregate_type, content-type, traceparent: no second type header
    CHECK(records[0].header_count == 5);
    CHECK(records[0].null_headers.empty());
    CHECK(records[0].value == R"({"payload":{"seq":1,"name":"n1","nested":{"a":[1,2]}},"eventVersion":3})");
    CHECK(records[1].partition == 0);
    CHECK(records[1].null_headers.contains("traceparent"));
    CHECK(records[1].null_headers.contains("type"));
    CHECK(records[1].value == R"({"payload":{"seq":2},"eventVersion":null})");
    CHECK(payload.terminate() == 0);

    // AND in envelope mode: every header JSON-encoded (the id with its quotes, a NULL field as
    // null), the envelope field in the event's additional_fields map, the partition the column's
    KafkaReader envelope_reader({"fields_envelope.user"});
    auto events = envelope_reader.readUntil(2, 60s);
    REQUIRE(events.size() == 2);
    std::ranges::sort(events, {}, [](const Record& r) { return r.headers.at("id"); });
    CHECK(events[0].partition == 2);
    CHECK(events[0].headers.at("id") == "\"00000000-0000-0000-0000-000000000001\"");
    CHECK(events[0].headers.at("type") == "\"UserUpdated\"");
    CHECK(events[0].headers.at("aggregate_type") == "\"user\"");
    CHECK(events[0].headers.at("content-type") == "\"application/json\"");
    CHECK(events[0].headers.at("traceparent") == "\"00-abc-01\"");
    outboxd::v1::Event first;
    REQUIRE(first.ParseFromString(events[0].value));
    CHECK(first.id() == "00000000-0000-0000-0000-000000000001");
    CHECK(first.additional_fields().at("eventVersion") == "3");
    CHECK(events[1].partition == 0);
    CHECK(events[1].headers.at("traceparent") == "null");
    outboxd::v1::Event second;
    REQUIRE(second.ParseFromString(events[1].value));
    CHECK(second.additional_fields().empty());
    CHECK(envelope.terminate() == 0);
}

TEST_CASE("partition_field_that_is_not_a_partition_is_dead_lettered", "[integration]") {
    // GIVEN a relay with a partition field and invalid_rows: dead-letter, on 3-partition topics
    auto db = Database::create("fields_badpart");
    Pg pg(db.dsn);
    addColumns(pg);
    const int port = freePort();
    Daemon d("fields_badpart",
             withLinesAfter(relayConfig(db, "fields_badpart",
                                        "invalid_rows:\n  action: dead-letter\n  dead_letter_topic: fields_badpart.dlq\n",
                                        port),
                            "  topic:", kFields));
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN a row names a negative partition, one a partition the topic does not have, then a good row
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000001', 'user', '42', 'T', '{}', NULL, 1, -1))");
    KafkaReader warm({"fields_badpart.user"});
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000002', 'user', '42', 'T', '{}', NULL, 1, 1))");
    REQUIRE(warm.readUntil(1, 60s).size() == 1);  // the topic exists now, with its 3 partitions
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000003', 'user', '42', 'T', '{}', NULL, 1, 7))");
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000004', 'user', '42', 'T', '{}', NULL, 1, 2))");

    // THEN both bad rows are dead-lettered saying why, and the good rows are published
    KafkaReader dlq({"fields_badpart.dlq"});
    auto dead = dlq.readUntil(2, 60s);
    REQUIRE(dead.size() == 2);
    std::ranges::sort(dead, {}, [](const Record& r) { return r.headers.at("id"); });
    CHECK_THAT(dead[0].headers.at("outboxd.error"),
               Catch::Contains("column 'part' (routing.additional_fields, placement partition) holds '-1'"));
    CHECK_THAT(dead[1].headers.at("outboxd.error"), Catch::Contains("partition"));
    auto good = warm.readUntil(1, 60s);
    REQUIRE(good.size() == 1);
    CHECK(good[0].headers.at("id") == "00000000-0000-0000-0000-000000000004");
    CHECK(good[0].partition == 2);
    CHECK(eventually(
        [&] {
            return metricValue(httpGet(port, "/metrics").body,
                               R"(outboxd_events_dead_lettered_total{reason="bad_partition"})") ==
                   std::optional<double>(2.0);
        },
        30s));
    CHECK(d.terminate() == 0);
}
