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
    Daemon d("value_mode", withLinesAfter(relayConfig(db, "value_mode", "", port), "  topic:", "  value: payload\n"));
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

TEST_CASE("update_of_an_outbox_row_follows_on_update", "[integration]") {
    // GIVEN publications made by hand that publish every operation (outboxd's own publish inserts only)
    auto warn_db = Database::create("on_update_warn");
    auto fatal_db = Database::create("on_update_fatal");
    Pg warn_pg(warn_db.dsn);
    Pg fatal_pg(fatal_db.dsn);
    warn_pg.exec(fmt::format("CREATE PUBLICATION {} FOR TABLE outbox", warn_db.name));
    fatal_pg.exec(fmt::format("CREATE PUBLICATION {} FOR TABLE outbox", fatal_db.name));
    auto insert = [](Pg& pg, int n) {
        pg.exec(fmt::format(
            "INSERT INTO outbox VALUES ('00000000-0000-0000-0000-{:012d}', 'user', '42', 'UserUpdated', '{{}}')", n));
    };

    // WHEN an outbox row is updated between two inserts, with on_update: warn
    const int port = freePort();
    Daemon warn("on_update_warn", relayConfig(warn_db, "on_update_warn", "", port));
    warn.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));
    insert(warn_pg, 1);
    warn_pg.exec("UPDATE outbox SET type = 'Changed' WHERE id = '00000000-0000-0000-0000-000000000001'");
    insert(warn_pg, 2);
    // THEN both inserts are events, the update is skipped, counted and logged as a warning
    KafkaReader reader({"on_update_warn.user"});
    auto records = reader.readUntil(2, 60s);
    REQUIRE(records.size() == 2);
    CHECK(records[1].headers.at("id") == "00000000-0000-0000-0000-000000000002");
    CHECK(eventually(
        [&] {
            return metricValue(httpGet(port, "/metrics").body, R"(outboxd_changes_skipped_total{kind="update"})") ==
                   std::optional<double>(1.0);
        },
        30s));
    CHECK_THAT(warn.log(), Catch::Contains("is skipped: only inserts are events"));
    CHECK(warn.terminate() == 0);

    // WHEN the same happens with on_update: fatal
    const auto fatal_port = freePort();
    Daemon stopper("on_update_fatal", withLinesAfter(relayConfig(fatal_db, "on_update_fatal", "", fatal_port),
                                                     "  topic:", "  on_update: fatal\n"));
    stopper.start();
    REQUIRE(eventually([&] { return httpGet(fatal_port, "/readyz").status == 200; }, 60s));
    insert(fatal_pg, 1);
    KafkaReader fatal_reader({"on_update_fatal.user"});
    REQUIRE(fatal_reader.readUntil(1, 60s).size() == 1);
    fatal_pg.exec("UPDATE outbox SET type = 'Changed' WHERE id = '00000000-0000-0000-0000-000000000001'");
    const auto after_update = parseLsn(*fatal_pg.scalar("SELECT pg_current_wal_lsn()"));
    insert(fatal_pg, 2);
    // THEN outboxd exits 1 naming the table, and the slot stays before the update's commit
    const auto code = stopper.waitExit(60s);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(stopper.log(), Catch::Contains("UPDATE of public.outbox") && Catch::Contains("on_update"));
    CHECK(confirmedFlush(fatal_pg, fatal_db.name) < after_update);
    CHECK(fatal_reader.readUntil(1, 3s).empty());
}
