// GIVEN/WHEN/THEN scenarios against real PostgreSQL and real Kafka.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "outboxd/v1/event.pb.h"
#include "support.h"
#include "workload.h"

using namespace itest;
using namespace std::chrono_literals;


TEST_CASE("relay_delivers_every_event_once_in_commit_order", "[integration]") {
    // GIVEN a database with the seed's schema and outboxd streaming from it
    auto db = Database::create("it_once");
    Pg pg(db.dsn);
    Daemon daemon("it_once", relayConfig(db, "it_once"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);

    // WHEN 5,000 events are written in 1,000 transactions across 3 aggregate types
    writeEvents(pg, 0, 5000, 5);
    const std::uint64_t after_last_commit = currentLsn(pg);

    // THEN each arrives exactly once, in its topic, with its key, headers and payload
    KafkaReader reader(topicsFor("it_once"));
    auto records = reader.readUntil(5000, 180s);
    auto extra = reader.drain(3s);
    INFO(daemon.log().substr(0, 4000));
    REQUIRE(records.size() == 5000);
    CHECK(extra.empty());
    auto decoded = decodeAll(records);
    std::set<int> seen;
    std::map<std::string, int> last_seq_per_key;
    std::map<std::string, int> partition_per_key;
    for (const auto& d : decoded) {
        checkContent(d, "it_once");
        CHECK(seen.insert(d.seq).second);
        const std::string& key = *d.record.key;
        // AND events of one key are on one partition, in commit order
        auto [pit, fresh] = partition_per_key.emplace(key, d.record.partition);
        CHECK(pit->second == d.record.partition);
        // AND on the partition the Java client would choose for that key (murmur2), 3 partitions
        CHECK(d.record.partition == javaPartition(key, 3));
        auto it = last_seq_per_key.find(key);
        if (it != last_seq_per_key.end()) CHECK(it->second < d.seq);
        last_seq_per_key[key] = d.seq;
    }
    CHECK(seen.size() == 5000);
    CHECK(*seen.begin() == 0);
    CHECK(*seen.rbegin() == 4999);

    // AND the slot's confirmed_flush_lsn reaches the last commit
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= after_last_commit; }, 30s));
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("dirty_restarts_lose_nothing", "[integration]") {
    // GIVEN outboxd streaming
    auto db = Database::create("it_kill");
    Pg pg(db.dsn);
    Daemon daemon("it_kill", relayConfig(db, "it_kill"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);

    // WHEN events are written while the daemon is SIGKILLed and restarted several times
    std::atomic<bool> writer_done{false};
    std::thread writer([&] {
        Pg wpg(db.dsn);
        writeEvents(wpg, 0, 5000, 5, 5ms);
        writer_done = true;
    });
    int kills = 0;
    std::mt19937 rng(42);
    while (!writer_done && kills < 6) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1000));
        daemon.kill9();
        ++kills;
        std::this_thread::sleep_for(100ms);
        daemon.start();
    }
    writer.join();

    // THEN every event arrives (duplicates allowed, each carrying the same id and content)
    KafkaReader reader(topicsFor("it_kill"));
    std::map<int, std::string> by_seq;
    std::size_t total = 0;
    eventually(
        [&] {
            for (auto& r : reader.readUntil(static_cast<std::size_t>(-1), 1s)) {
                ++total;
                outboxd::v1::Event e;
                REQUIRE(e.ParseFromString(r.value));
                int seq = std::stoi(e.id().substr(24));
                auto [it, fresh] = by_seq.emplace(seq, r.value);
                if (!fresh) {
                    // A duplicate: same event id, same payload and source position.
                    outboxd::v1::Event first;
                    REQUIRE(first.ParseFromString(it->second));
                    CHECK(first.payload() == e.payload());
                    CHECK(first.source().lsn() == e.source().lsn());
                }
            }
            return by_seq.size() == 5000;
        },
        240s);
    INFO("kills: " << kills << ", records read: " << total);
    INFO(daemon.log().substr(daemon.log().size() > 4000 ? daemon.log().size() - 4000 : 0));
    CHECK(kills >= 3);
    REQUIRE(by_seq.size() == 5000);
    // AND the restarts resumed from positions the slot had confirmed mid-stream, not only from the start
    std::set<std::string> resume_points;
    std::istringstream lines(daemon.log());
    for (std::string line; std::getline(lines, line);) {
        auto at = line.find("streaming from slot it_kill at ");
        if (at != std::string::npos) resume_points.insert(line.substr(at + 31, line.find(' ', at + 31) - at - 31));
    }
    CHECK(resume_points.size() >= 3);
    for (const auto& [seq, value] : by_seq) {
        Record r;
        r.value = value;
        outboxd::v1::Event e;
        REQUIRE(e.ParseFromString(value));
        CHECK(e.id() == eventId(seq));
        CHECK(e.payload() == payload(seq));
    }
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("sigterm_confirms_and_restart_resends_nothing", "[integration]") {
    // GIVEN outboxd has delivered 500 events
    auto db = Database::create("it_term");
    Pg pg(db.dsn);
    Daemon daemon("it_term", relayConfig(db, "it_term"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    writeEvents(pg, 0, 500, 5);
    const std::uint64_t after_last_commit = currentLsn(pg);
    KafkaReader reader(topicsFor("it_term"));
    REQUIRE(reader.readUntil(500, 120s).size() == 500);

    // WHEN it gets SIGTERM
    int code = daemon.terminate();
    INFO(daemon.log().substr(daemon.log().size() > 4000 ? daemon.log().size() - 4000 : 0));

    // THEN it exits 0 having confirmed the last commit
    CHECK(code == 0);
    CHECK(confirmedFlush(pg, db.name) >= after_last_commit);
    CHECK_THAT(daemon.log(), Catch::Contains("confirmed"));

    // AND a restart sends only what is new
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    writeEvents(pg, 500, 1, 1);
    auto after = reader.readUntil(1, 60s);
    auto extra = reader.drain(3s);
    REQUIRE(after.size() == 1);
    CHECK(extra.empty());
    auto decoded = decodeAll(after);
    CHECK(decoded[0].seq == 500);
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("idle_outbox_follows_the_wal_end", "[integration]") {
    // GIVEN outboxd streaming an outbox that receives nothing
    auto db = Database::create("it_idle");
    Pg pg(db.dsn);
    Daemon daemon("it_idle", relayConfig(db, "it_idle", "")) ;
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    const std::uint64_t start = confirmedFlush(pg, db.name);

    // WHEN 100 MB are written to another table
    pg.exec("CREATE TABLE other (id bigserial PRIMARY KEY, v text)");
    for (int i = 0; i < 10; ++i) {
        pg.exec("INSERT INTO other (v) SELECT repeat(md5(g::text), 32) FROM generate_series(1, 10000) g");
    }
    const std::uint64_t after = currentLsn(pg);
    CHECK(after - start > 100ull * 1024 * 1024);

    // THEN the slot's confirmed position follows, and the WAL it retains falls under 16 MiB
    // within 60 s: the idle outbox pins no WAL
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= after; }, 60s));
    std::int64_t retained = -1;
    bool small = eventually(
        [&] {
            retained = std::stoll(*pg.scalar(fmt::format(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots "
                "WHERE slot_name = '{}'",
                db.name)));
            return retained < 16 * 1024 * 1024;
        },
        60s);
    INFO("retained WAL: " << retained << " bytes");
    CHECK(small);
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("mapped_column_missing_stops_with_a_clear_message", "[integration]") {
    // GIVEN an outbox table without the configured 'type' column
    auto db = Database::create("it_badcol");
    Pg pg(db.dsn);
    pg.exec("ALTER TABLE outbox RENAME COLUMN type TO event_type");
    Daemon daemon("it_badcol", relayConfig(db, "it_badcol"));

    // WHEN outboxd starts, THEN it exits 1 at connect, before streaming, naming the column, the
    // key that names it and the table (the same column vanishing while streaming is
    // alter_table_under_a_running_relay)
    daemon.start();
    auto code = daemon.waitExit(60s);
    INFO(daemon.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("'type'") && Catch::Contains("public.outbox") &&
                                 Catch::Contains("source.outbox.columns.type"));
    CHECK(daemon.log().find("streaming from slot") == std::string::npos);
}
