// routing.value: payload on a real PostgreSQL and Kafka: the record is the shape Debezium's Outbox
// Event Router sends (the payload's text as PostgreSQL prints it, a null value for a NULL
// payload), with outboxd's key and headers.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

TEST_CASE("payload_value_mode_sends_the_payload_alone", "[integration]") {
    // GIVEN a relay with routing.value: payload
    auto db = Database::create("value_mode");
    Pg pg(db.dsn);
    const int port = freePort();
    std::string config = relayConfig(db, "value_mode", "", port);
    const std::string anchor = "  topic: \"value_mode.{aggregatetype}\"\n";
    const auto at = config.find(anchor);
    REQUIRE(at != std::string::npos);
    config.insert(at + anchor.size(), "  value: payload\n");
    Daemon d("value_mode", config);
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN a jsonb payload (keys out of order, nested) and a NULL payload are written
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000001', 'user', '42', 'UserUpdated',
                '{"seq": 1, "name": "n1", "nested": {"a": [1, 2]}}'))");
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000002', 'user', '42', 'UserDeleted', NULL))");
    const std::string printed = *pg.scalar(
        "SELECT payload::text FROM outbox WHERE id = '00000000-0000-0000-0000-000000000001'");

    // THEN the first record's value is the payload's text exactly as PostgreSQL prints it
    KafkaReader reader({"value_mode.user"});
    auto records = reader.readUntil(2, 60s);
    REQUIRE(records.size() == 2);
    CHECK(records[0].value == printed);
    CHECK_FALSE(records[0].value_is_null);
    CHECK(records[0].key == std::optional<std::string>("42"));
    CHECK(records[0].headers.at("id") == "00000000-0000-0000-0000-000000000001");
    CHECK(records[0].headers.at("type") == "UserUpdated");
    CHECK(records[0].headers.at("aggregate_type") == "user");
    CHECK(records[0].headers.at("content-type") == "application/json");
    // AND the NULL payload is a null value with key and headers kept
    CHECK(records[1].value_is_null);
    CHECK(records[1].key == std::optional<std::string>("42"));
    CHECK(records[1].headers.at("id") == "00000000-0000-0000-0000-000000000002");
    CHECK(records[1].headers.at("type") == "UserDeleted");
    CHECK(d.terminate() == 0);
}
