// Unit tests for what each PostgreSQL version offers: the pgoutput protocol outboxd asks for, the
// pg_replication_slots columns it reads, and the words for an invalidated slot.

#include <catch2/catch.hpp>

#include "cdc/server_version.h"

using namespace outboxd::cdc;

TEST_CASE("the protocol asked for is the highest the server and the decoder share", "[server_version]") {
    struct Case {
        int server_version;
        int expected;
    };
    auto c = GENERATE(values<Case>({{100023, 1}, {130016, 1}, {140015, 2}, {150018, 3}, {160006, 4},
                                    {170002, 4}, {180001, 4}, {190000, 4}}));
    CAPTURE(c.server_version);
    CHECK(serverProtocol(c.server_version) == c.expected);
    CHECK(sharedProtocol(c.server_version, 4) == c.expected);
    // A decoder that speaks less caps it; never below 1.
    CHECK(sharedProtocol(c.server_version, 2) == std::min(c.expected, 2));
    CHECK(sharedProtocol(c.server_version, 0) == 1);
}

TEST_CASE("logical decoding messages are asked for from PostgreSQL 14 on", "[server_version]") {
    CHECK_FALSE(sendsMessages(130016));
    CHECK(sendsMessages(140000));
    CHECK(sendsMessages(180001));
}

TEST_CASE("slot columns: NULL where the server lacks them, in a fixed order", "[server_version]") {
    CHECK(slotStateColumns(120000).find("wal_status") == std::string::npos);
    CHECK(slotStateColumns(130000).starts_with("wal_status, NULL::boolean, NULL::text, NULL::text"));
    CHECK(slotStateColumns(160006).starts_with("wal_status, conflicting, NULL::text, NULL::text"));
    auto v17 = slotStateColumns(170002);
    CHECK(v17.starts_with("wal_status, conflicting, invalidation_reason, to_char(inactive_since"));
    CHECK(slotStateColumns(180001) == v17);
    for (int v : {100000, 130000, 160000, 170000, 180000}) {
        auto cols = slotStateColumns(v);
        // kSlotStateColumnCount items: three top-level commas (the to_char format has none).
        CHECK(std::count(cols.begin(), cols.end(), ',') - (v >= 170000 ? 1 : 0) == kSlotStateColumnCount - 1);
    }
}

TEST_CASE("an invalidated slot is described by the newest column the server has", "[server_version]") {
    SECTION("a healthy slot") {
        CHECK_FALSE(isInvalidated(SlotInvalidation{"reserved", false, std::nullopt, std::nullopt}));
        CHECK_FALSE(isInvalidated(SlotInvalidation{"", std::nullopt, std::nullopt, std::nullopt}));
        CHECK_FALSE(isInvalidated(SlotInvalidation{"extended", false, std::nullopt, "2026-01-01T00:00:00Z"}));
    }
    SECTION("PostgreSQL 13 to 15: wal_status alone") {
        SlotInvalidation s{"lost", std::nullopt, std::nullopt, std::nullopt};
        REQUIRE(isInvalidated(s));
        auto m = invalidationMessage("orders", s);
        CHECK_THAT(m, Catch::Contains("(wal_status = lost)") && Catch::Contains("removed WAL") &&
                          Catch::Contains("max_slot_wal_keep_size") &&
                          Catch::Contains("pg_drop_replication_slot('orders')"));
    }
    SECTION("PostgreSQL 16: conflicting") {
        SlotInvalidation s{"lost", true, std::nullopt, std::nullopt};
        auto m = invalidationMessage("orders", s);
        CHECK_THAT(m, Catch::Contains("conflicting = true") && Catch::Contains("hot_standby_feedback"));
        CHECK_THAT(m, !Catch::Contains("max_slot_wal_keep_size"));
    }
    SECTION("PostgreSQL 17+: wal_removed") {
        auto m = invalidationMessage("orders", SlotInvalidation{"lost", false, "wal_removed", "2026-12-02T10:00:00Z"});
        CHECK_THAT(m, Catch::Contains("wal_status = lost, invalidation_reason = wal_removed") &&
                          Catch::Contains("max_slot_wal_keep_size"));
    }
    SECTION("PostgreSQL 18: idle_timeout names the setting and when the slot went idle") {
        SlotInvalidation s{"lost", false, "idle_timeout", "2026-12-02T10:00:00Z"};
        REQUIRE(isInvalidated(s));
        auto m = invalidationMessage("orders", s);
        CHECK_THAT(m, Catch::Contains("invalidation_reason = idle_timeout") &&
                          Catch::Contains("idle_replication_slot_timeout") &&
                          Catch::Contains("inactive since 2026-12-02T10:00:00Z"));
        CHECK_THAT(m, !Catch::Contains("max_slot_wal_keep_size"));
    }
    SECTION("PostgreSQL 17+: conflicts with recovery") {
        auto rows = invalidationMessage("s", SlotInvalidation{"lost", true, "rows_removed", std::nullopt});
        CHECK_THAT(rows, Catch::Contains("rows_removed") && Catch::Contains("catalog rows"));
        CHECK_THAT(rows, !Catch::Contains("conflicting = true"));
        auto level = invalidationMessage("s", SlotInvalidation{"lost", true, "wal_level_insufficient", std::nullopt});
        CHECK_THAT(level, Catch::Contains("wal_level was lowered"));
    }
    SECTION("a reason this outboxd does not know is still shown") {
        SlotInvalidation s{"lost", false, "some_new_reason", std::nullopt};
        REQUIRE(isInvalidated(s));
        CHECK_THAT(invalidationMessage("s", s),
                   Catch::Contains("invalidation_reason = some_new_reason") && Catch::Contains("pg_drop_replication_slot"));
    }
}

TEST_CASE("failover slots from PostgreSQL 17 on, and the major version for messages", "[server_version]") {
    CHECK_FALSE(hasFailoverSlots(160006));
    CHECK(hasFailoverSlots(170000));
    CHECK(hasFailoverSlots(180001));
    CHECK(majorVersionName(140015) == "14");
    CHECK(majorVersionName(180001) == "18");
    CHECK(majorVersionName(90624) == "9.6");
}
