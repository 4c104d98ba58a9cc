// A row Kafka refuses only when it is delivered (larger than the topic's max.message.bytes)
// dead-lettered with invalid_rows.action dead-letter: the rows around it delivered in order, the
// dead-letter record carrying the row's payload and the spec's headers, the slot confirmed past it.
// A row over the producer's own message.max.bytes (which holds for the dead-letter topic too) is
// dead-lettered without its payload, the headers saying how many bytes were left out.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

void insertRow(Pg& pg, int n, const std::string& payload_json) {
    pg.exec(fmt::format(
        "INSERT INTO outbox VALUES ('00000000-0000-0000-0000-{:012d}', 'user', '42', 'UserUpdated', '{}')", n,
        payload_json));
}

}  // namespace

TEST_CASE("oversized_row_is_dead_lettered_at_delivery", "[integration]") {
    // GIVEN the events topic refuses records over 1500 bytes (the dead-letter topic does not)
    createTopics({{.name = "bigrow.user", .config = {{"max.message.bytes", "1500"}}}});
    auto db = Database::create("bigrow");
    Pg pg(db.dsn);
    const int port = freePort();
    Daemon d("bigrow", relayConfig(db, "bigrow", R"(invalid_rows:
  action: dead-letter
  dead_letter_topic: bigrow.dead-letter
)",
                                   port));
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN a small row, a 5000-byte row and a small row are written (one transaction each)
    KafkaReader reader({"bigrow.user"});
    insertRow(pg, 1, R"({"n": 1})");
    REQUIRE(reader.readUntil(1, 60s).size() == 1);
    const std::string big = fmt::format(R"({{"blob": "{}"}})", std::string(5000, 'x'));
    insertRow(pg, 2, big);
    const auto after_big = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()"));

    // THEN the big row is in the dead-letter topic with its payload and what was wrong
    KafkaReader dead({"bigrow.dead-letter"});
    auto dl = dead.readUntil(1, 60s);
    REQUIRE(dl.size() == 1);
    CHECK(dl[0].key == std::optional<std::string>("42"));
    CHECK(dl[0].value == big);
    CHECK(dl[0].headers.at("id") == "00000000-0000-0000-0000-000000000002");
    CHECK(dl[0].headers.at("type") == "UserUpdated");
    CHECK(dl[0].headers.at("aggregate_type") == "user");
    CHECK(dl[0].headers.at("outboxd.table") == "public.outbox");
    CHECK_THAT(dl[0].headers.at("outboxd.error"), Catch::Contains("bigrow.user"));
    CHECK_THAT(dl[0].headers.at("outboxd.error"), Catch::Contains("00000000-0000-0000-0000-000000000002"));
    CHECK_THAT(dl[0].headers.at("outboxd.error"), Catch::Contains("too large"));
    CHECK(parseLsn(dl[0].headers.at("outboxd.lsn")) > 0);
    CHECK(parseLsn(dl[0].headers.at("outboxd.lsn")) < after_big);

    // AND the row after it is delivered, after the first one
    insertRow(pg, 3, R"({"n": 3})");
    auto rest = reader.readUntil(1, 60s);
    REQUIRE(rest.size() == 1);
    CHECK(rest[0].headers.at("id") == "00000000-0000-0000-0000-000000000003");
    CHECK(dead.readUntil(1, 5s).empty());
    CHECK(metricValue(httpGet(port, "/metrics").body, R"(outboxd_events_dead_lettered_total{reason="too_large"})") ==
          1.0);

    // AND the slot is confirmed past every row, the dead-lettered one included
    const auto end = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()"));
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= end; }, 30s));
    CHECK(d.running());
    CHECK(d.terminate() == 0);
}

TEST_CASE("row_over_message_max_bytes_is_dead_lettered_without_its_payload", "[integration]") {
    // GIVEN a producer whose message.max.bytes (every topic's limit, the dead-letter topic's too)
    // is 3000 bytes, and dead-lettering on
    auto db = Database::create("hugerow");
    Pg pg(db.dsn);
    const int port = freePort();
    Daemon d("hugerow", withLinesAfter(relayConfig(db, "hugerow", R"(invalid_rows:
  action: dead-letter
  dead_letter_topic: hugerow.dead-letter
)",
                                                   port),
                                       "    shutdown_timeout_ms:", "    properties:\n      message.max.bytes: \"3000\"\n"));
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN a small row, a 5000-byte row and a small row are written (one transaction each)
    KafkaReader reader({"hugerow.user"});
    KafkaReader dead({"hugerow.dead-letter"});
    insertRow(pg, 1, R"({"n": 1})");
    REQUIRE(reader.readUntil(1, 60s).size() == 1);
    const std::string big = fmt::format(R"({{"blob": "{}"}})", std::string(5000, 'x'));
    insertRow(pg, 2, big);
    insertRow(pg, 3, R"({"n": 3})");

    // THEN the big row's dead-letter record has no value, says how many bytes were left out and
    // where the row is (it could not carry them: the dead-letter topic has the same limit)
    auto dl = dead.readUntil(1, 60s);
    REQUIRE(dl.size() == 1);
    CHECK(dl[0].key == std::optional<std::string>("42"));
    CHECK(dl[0].value.empty());
    CHECK(dl[0].headers.at("id") == "00000000-0000-0000-0000-000000000002");
    CHECK(dl[0].headers.at("outboxd.payload_omitted") == std::to_string(big.size()));
    CHECK(dl[0].headers.at("outboxd.table") == "public.outbox");
    CHECK(parseLsn(dl[0].headers.at("outboxd.lsn")) > 0);
    CHECK_THAT(dl[0].headers.at("outboxd.error"),
               Catch::Contains("message.max.bytes") && Catch::Contains("left out"));

    // AND the row after it is delivered, and the relay goes on
    auto rest = reader.readUntil(1, 60s);
    REQUIRE(rest.size() == 1);
    CHECK(rest[0].headers.at("id") == "00000000-0000-0000-0000-000000000003");
    CHECK(metricValue(httpGet(port, "/metrics").body, R"(outboxd_events_dead_lettered_total{reason="too_large"})") ==
          1.0);
    const auto end = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()"));
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= end; }, 30s));
    CHECK(d.running());
    CHECK(d.terminate() == 0);
}
