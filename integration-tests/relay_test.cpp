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

using namespace itest;
using namespace std::chrono_literals;

namespace {

const char* const kTypes[] = {"user", "group", "membership"};
const char* const kEventTypes[] = {"Registered", "Updated", "Deleted"};

std::string eventId(int seq) { return fmt::format("00000000-0000-4000-8000-{:012d}", seq); }
std::string aggType(int seq) { return kTypes[seq % 3]; }
std::string aggId(int seq) { return fmt::format("{}-{}", aggType(seq), seq % 37); }
std::string evType(int seq) { return fmt::format("{}{}", aggType(seq), kEventTypes[(seq / 3) % 3]); }
// jsonb's own output form (keys shorter first), so it compares byte for byte.
std::string payload(int seq) { return fmt::format(R"({{"seq": {}, "name": "user-{}"}})", seq, seq); }

// Writes events [first, first+count) in transactions of `per_txn`, each with a users row too,
// the way the auth service does: the change and its outbox row in one transaction.
void writeEvents(Pg& pg, int first, int count, int per_txn, std::chrono::microseconds pause = 0us) {
    for (int base = first; base < first + count; base += per_txn) {
        std::string sql = "BEGIN;";
        for (int seq = base; seq < std::min(base + per_txn, first + count); ++seq) {
            sql += fmt::format(
                "INSERT INTO users (id, name, email) VALUES ({0}, 'user-{0}', 'u{0}@example.org') "
                "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;"
                "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ('{1}', '{2}', '{3}', "
                "'{4}', '{5}');",
                seq, eventId(seq), aggType(seq), aggId(seq), evType(seq), payload(seq));
        }
        sql += "COMMIT;";
        pg.exec(sql);
        if (pause > 0us) std::this_thread::sleep_for(pause);
    }
}

std::vector<std::string> topicsFor(const std::string& prefix) {
    std::vector<std::string> t;
    for (const char* type : kTypes) t.push_back(prefix + "." + type);
    return t;
}

struct Decoded {
    Record record;
    outboxd::v1::Event event;
    int seq = -1;
};

std::vector<Decoded> decodeAll(const std::vector<Record>& records) {
    std::vector<Decoded> out;
    for (const auto& r : records) {
        Decoded d;
        d.record = r;
        REQUIRE(d.event.ParseFromString(r.value));
        d.seq = std::stoi(d.event.id().substr(24));
        out.push_back(std::move(d));
    }
    return out;
}

// Each record carries exactly what the row said, where it should be.
void checkContent(const Decoded& d, const std::string& prefix, const std::string& table = "outbox") {
    const int seq = d.seq;
    INFO("event seq " << seq);
    CHECK(d.event.id() == eventId(seq));
    CHECK(d.record.topic == prefix + "." + aggType(seq));
    REQUIRE(d.record.key.has_value());
    CHECK(*d.record.key == aggId(seq));
    CHECK(d.record.headers.at("id") == eventId(seq));
    CHECK(d.record.headers.at("type") == evType(seq));
    CHECK(d.record.headers.at("aggregate_type") == aggType(seq));
    CHECK(d.record.headers.at("content-type") == "application/json");
    CHECK(d.event.aggregate_type() == aggType(seq));
    CHECK(d.event.aggregate_id() == aggId(seq));
    CHECK(d.event.type() == evType(seq));
    CHECK(d.event.payload() == payload(seq));
    CHECK(d.event.content_type() == "application/json");
    CHECK(d.event.source().table() == table);
    CHECK(d.event.source().schema() == "public");
    CHECK(d.event.source().lsn() > 0);
    CHECK(d.event.source().commit_lsn() >= d.event.source().lsn());
    CHECK(d.event.source().xid() > 0);
    CHECK(d.event.occurred_at().seconds() == d.event.source().commit_time().seconds());
    CHECK(d.event.source().commit_time().seconds() > 1'600'000'000);
}

void waitStreaming(Pg& pg, const std::string& slot, Daemon& daemon) {
    bool ok = eventually(
        [&] {
            return pg.scalar(fmt::format("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{}'", slot))
                .has_value();
        },
        60s);
    INFO(daemon.log());
    REQUIRE(ok);
}

std::uint64_t currentLsn(Pg& pg) { return parseLsn(*pg.scalar("SELECT pg_current_wal_insert_lsn()")); }

}  // namespace

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

    // WHEN other tables are written
    pg.exec("CREATE TABLE other (id bigserial PRIMARY KEY, v text)");
    pg.exec("INSERT INTO other (v) SELECT repeat('x', 200) FROM generate_series(1, 20000)");
    const std::uint64_t after = currentLsn(pg);

    // THEN the slot's confirmed position follows, so the idle outbox pins no WAL
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= after; }, 60s));
    CHECK(confirmedFlush(pg, db.name) > start);
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("mapped_column_missing_stops_with_a_clear_message", "[integration]") {
    // GIVEN an outbox table without the configured 'type' column
    auto db = Database::create("it_badcol");
    Pg pg(db.dsn);
    pg.exec("ALTER TABLE outbox RENAME COLUMN type TO event_type");
    Daemon daemon("it_badcol", relayConfig(db, "it_badcol"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    const std::uint64_t before = confirmedFlush(pg, db.name);

    // WHEN a row arrives
    pg.exec("INSERT INTO outbox (id, aggregatetype, aggregateid, event_type, payload) VALUES "
            "(gen_random_uuid(), 'user', '1', 'x', '{}')");

    // THEN outboxd exits 1 naming the column and the table, and confirms nothing past it
    auto code = daemon.waitExit(60s);
    INFO(daemon.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("'type'") && Catch::Contains("public.outbox"));
    CHECK(confirmedFlush(pg, db.name) == before);
}
