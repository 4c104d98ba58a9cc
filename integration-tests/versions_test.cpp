// What each PostgreSQL version (14 to 18, OUTBOXD_PG_VERSION) changes for outboxd: the pgoutput
// protocol it is asked for, and what a newer server says about an invalidated slot.
// Scenarios that need a newer server than the one under test exit with kSkipped (ctest's
// SKIP_RETURN_CODE), so the matrix shows them as skipped, not passed.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "support.h"
#include "workload.h"

using namespace itest;

namespace {

constexpr int kSkipped = 77;

int serverVersionNum(Pg& pg) { return std::stoi(*pg.scalar("SHOW server_version_num")); }

void skipUnless(Pg& pg, int min_version, const char* why) {
    const int v = serverVersionNum(pg);
    if (v < min_version) {
        std::printf("SKIPPED on PostgreSQL %d: %s\n", v, why);
        std::fflush(stdout);
        std::_Exit(kSkipped);
    }
}

// Appends a line to the matrix script's report (OUTBOXD_IT_REPORT), when it asked for one.
void report(const std::string& line) {
    if (const char* path = std::getenv("OUTBOXD_IT_REPORT"); path != nullptr && *path != '\0') {
        std::ofstream(path, std::ios::app) << line << "\n";
    }
}

}  // namespace

TEST_CASE("pgoutput_protocol_is_the_highest_the_server_speaks", "[integration][versions]") {
    // GIVEN the server under test
    auto db = Database::create("it_proto");
    Pg pg(db.dsn);
    const int version = serverVersionNum(pg);
    const int expected = version >= 160000 ? 4 : version >= 150000 ? 3 : version >= 140000 ? 2 : 1;

    // WHEN outboxd streams from it
    Daemon daemon("it_proto", relayConfig(db, "it_proto"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    std::smatch m;
    std::string log;
    const std::regex line(R"(PostgreSQL (\d+), pgoutput protocol (\d+))");
    REQUIRE(eventually([&] { return std::regex_search(log = daemon.log(), m, line); }, 30s));

    // THEN it asked for the highest protocol the server speaks (14: 2, 15: 3, 16+: 4) and events
    // arrive decoded under it
    INFO(tail(log));
    CHECK(std::stoi(m[1].str()) == version);
    const int proto = std::stoi(m[2].str());
    CHECK(proto == expected);
    writeEvents(pg, 0, 30, 3);
    KafkaReader reader(topicsFor("it_proto"));
    awaitAll(reader, "it_proto", 0, 30, 60s);
    CHECK(daemon.terminate() == 0);
    report(fmt::format("server_version_num={} pgoutput_protocol={}", version, proto));
}

TEST_CASE("idle_slot_invalidation_names_idle_replication_slot_timeout", "[integration][versions]") {
    Pg admin(Env::get().pg_dsn);
    skipUnless(admin, 180000, "idle_replication_slot_timeout is new in PostgreSQL 18");

    // GIVEN a slot outboxd streamed from, then left inactive past idle_replication_slot_timeout
    auto db = Database::create("it_idle");
    Pg pg(db.dsn);
    {
        Daemon daemon("it_idle", relayConfig(db, "it_idle"));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        CHECK(daemon.terminate() == 0);
    }
    admin.exec("ALTER SYSTEM SET idle_replication_slot_timeout = '1s'");
    admin.exec("SELECT pg_reload_conf()");
    struct Restore {
        Pg& admin;
        ~Restore() {
            admin.exec("ALTER SYSTEM RESET idle_replication_slot_timeout");
            admin.exec("SELECT pg_reload_conf()");
        }
    } restore{admin};
    bool invalidated = eventually(
        [&] {
            pg.exec("CHECKPOINT");
            return pg.scalar(fmt::format("SELECT invalidation_reason FROM pg_replication_slots WHERE slot_name = '{}'",
                                         db.name)) == std::optional<std::string>("idle_timeout");
        },
        60s);
    REQUIRE(invalidated);

    // WHEN outboxd starts on it
    Daemon again("it_idle_again", relayConfig(db, "it_idle"));
    again.start();
    auto code = again.waitExit(60s);

    // THEN it exits 1 naming the reason, the setting and when the slot went idle, not the
    // max_slot_wal_keep_size advice that fits a slot whose WAL was removed
    INFO(again.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(again.log(), Catch::Contains("invalidation_reason = idle_timeout") &&
                                Catch::Contains("idle_replication_slot_timeout") &&
                                Catch::Contains("inactive since 20") && Catch::Contains("pg_drop_replication_slot"));
    CHECK_THAT(again.log(), !Catch::Contains("raise max_slot_wal_keep_size"));
}

TEST_CASE("failover_slot_is_created_on_17_and_refused_before", "[integration][versions]") {
    auto db = Database::create("it_failover");
    Pg pg(db.dsn);
    const int version = serverVersionNum(pg);
    auto withFailover = [&](bool on) {
        std::string yaml = relayConfig(db, "it_failover");
        const std::string anchor = "    publication: it_failover\n";
        yaml.replace(yaml.find(anchor), anchor.size(), anchor + (on ? "    failover: true\n" : "    failover: false\n"));
        return yaml;
    };

    if (version < 170000) {
        // GIVEN a server without failover slots, WHEN outboxd starts with failover: true,
        // THEN it exits 1 naming the server's version, and creates no slot
        Daemon daemon("it_failover_old", withFailover(true));
        daemon.start();
        auto code = daemon.waitExit(60s);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains(fmt::format("PostgreSQL {} has no failover slots", version / 10000)) &&
                                     Catch::Contains("new in PostgreSQL 17"));
        CHECK_FALSE(pg.scalar(fmt::format("SELECT 1 FROM pg_replication_slots WHERE slot_name = '{}'", db.name)));
        return;
    }

    // GIVEN PostgreSQL 17 or later, WHEN outboxd starts with failover: true
    {
        Daemon daemon("it_failover", withFailover(true));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        // THEN the slot it created is a failover slot, and events flow
        CHECK(pg.scalar(fmt::format("SELECT failover FROM pg_replication_slots WHERE slot_name = '{}'", db.name)) ==
              std::optional<std::string>("t"));
        writeEvents(pg, 0, 10, 2);
        KafkaReader reader(topicsFor("it_failover"));
        awaitAll(reader, "it_failover", 0, 10, 60s);
        CHECK(daemon.terminate() == 0);
    }

    // WHEN outboxd starts on that slot with failover: false, THEN it exits 1 saying how to agree
    Daemon other("it_failover_off", withFailover(false));
    other.start();
    auto code = other.waitExit(60s);
    INFO(other.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(other.log(), Catch::Contains("has failover = true, but source.postgres.failover is false") &&
                                Catch::Contains("ALTER_REPLICATION_SLOT"));
}
