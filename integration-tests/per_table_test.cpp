// Per-table settings (source.outbox.tables map entries) on a real PostgreSQL and Kafka: two outbox
// tables with different column names and topics, streamed by one relay.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

TEST_CASE("two_outbox_tables_with_their_own_columns_and_topics", "[integration]") {
    // GIVEN the default outbox and an EF Core style table with quoted names, its own topic and key
    auto db = Database::create("per_table");
    Pg pg(db.dsn);
    pg.exec(R"(CREATE TABLE "OutboxMessages" ("Id" uuid PRIMARY KEY, "AggregateType" text NOT NULL,
               "AggregateId" text NOT NULL, "Type" text NOT NULL, "Payload" jsonb))");
    const int port = freePort();
    const std::string yaml = withLinesAfter(relayConfig(db, "per_table", "", port), "    publication:",
                                            "  outbox:\n"
                                            "    tables:\n"
                                            "      - public.outbox\n"
                                            "      - name: '\"OutboxMessages\"'\n"
                                            "        columns: {id: '\"Id\"', aggregate_type: '\"AggregateType\"', "
                                            "aggregate_id: '\"AggregateId\"', type: '\"Type\"', payload: '\"Payload\"'}\n"
                                            "        topic: 'per_table.messages.{\"AggregateType\"}'\n"
                                            "        key: '{\"AggregateId\"}/{\"Type\"}'\n");
    Daemon d("per_table", yaml);
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN a row goes into each table, in one transaction and then one more into each
    pg.exec(R"(BEGIN;
        INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000001', 'user', '7', 'UserRegistered', '{"n": 1}');
        INSERT INTO "OutboxMessages" VALUES ('00000000-0000-0000-0000-000000000002', 'order', '8', 'OrderPlaced', '{"n": 2}');
        COMMIT)");
    pg.exec(R"(INSERT INTO "OutboxMessages" VALUES ('00000000-0000-0000-0000-000000000003', 'order', '8', 'OrderPaid', '{"n": 3}'))");
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000004', 'user', '9', 'UserRenamed', '{"n": 4}'))");

    // THEN each table's events are on its own topic with its own key (records of different keys may
    // sit on different partitions, so they are matched by id, not by position)
    const auto byId = [](const std::vector<Record>& records) {
        std::map<std::string, Record> out;
        for (const auto& r : records) out.emplace(r.headers.at("id"), r);
        return out;
    };
    KafkaReader users({"per_table.user"});
    auto u = byId(users.readUntil(2, 120s));
    REQUIRE(u.size() == 2);
    REQUIRE(u.contains("00000000-0000-0000-0000-000000000001"));
    REQUIRE(u.contains("00000000-0000-0000-0000-000000000004"));
    CHECK(u.at("00000000-0000-0000-0000-000000000001").key == std::optional<std::string>("7"));
    CHECK(u.at("00000000-0000-0000-0000-000000000001").headers.at("type") == "UserRegistered");
    CHECK(u.at("00000000-0000-0000-0000-000000000004").key == std::optional<std::string>("9"));
    KafkaReader orders({"per_table.messages.order"});
    auto o = byId(orders.readUntil(2, 120s));
    REQUIRE(o.size() == 2);
    REQUIRE(o.contains("00000000-0000-0000-0000-000000000002"));
    REQUIRE(o.contains("00000000-0000-0000-0000-000000000003"));
    CHECK(o.at("00000000-0000-0000-0000-000000000002").key == std::optional<std::string>("8/OrderPlaced"));
    CHECK(o.at("00000000-0000-0000-0000-000000000002").headers.at("type") == "OrderPlaced");
    CHECK(o.at("00000000-0000-0000-0000-000000000002").headers.at("aggregate_type") == "order");
    CHECK(o.at("00000000-0000-0000-0000-000000000003").key == std::optional<std::string>("8/OrderPaid"));
    // and no event of one table went to the other's topic
    KafkaReader strays({"per_table.order", "per_table.messages.user"});
    CHECK(strays.readUntil(1, 5s).empty());
    CHECK(d.terminate() == 0);
}

TEST_CASE("per_table_column_missing_is_refused_at_connect", "[integration]") {
    // GIVEN a table whose entry names a column it does not have
    auto db = Database::create("per_table_missing");
    const std::string yaml = withLinesAfter(relayConfig(db, "per_table_missing"), "    publication:",
                                            "  outbox:\n"
                                            "    tables:\n"
                                            "      - name: outbox\n"
                                            "        columns: {aggregate_id: invoice}\n");
    // WHEN the relay connects, THEN it stops before publishing, naming the column, the table and the entry
    Daemon d("per_table_missing", yaml);
    d.start();
    const auto code = d.waitExit(120s);
    const std::string log = d.log();
    INFO(log);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK(log.find("streaming from slot") == std::string::npos);
    CHECK_THAT(log, Catch::Contains("outbox table public.outbox has no column 'invoice'"));
    CHECK_THAT(log, Catch::Contains("columns.aggregate_id of the entry of public.outbox in source.outbox.tables"));
}
