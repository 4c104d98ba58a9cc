// Exactly-once delivery (issue 10): a read_committed consumer sees every event once through
// SIGKILLs of the relay, and a second relay on the slot fences the first.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "outboxd/v1/event.pb.h"
#include "support.h"
#include "workload.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

std::string eosConfig(const Database& db, const std::string& prefix, int interval_ms) {
    return withLinesAfter(relayConfig(db, prefix), "  kafka:",
                          fmt::format("    delivery: exactly-once\n"
                                      "    checkpoint_topic: {}.checkpoints\n"
                                      "    transaction_interval_ms: {}\n",
                                      prefix, interval_ms));
}

const std::map<std::string, std::string> kReadCommitted{{"isolation.level", "read_committed"}};

// Reads with read_committed until `count` distinct events arrived (or the timeout), then a quiet
// spell for late duplicates; checks that each arrived once, in commit order per key.
void expectExactlyOnce(const std::string& prefix, int count, const std::string& log) {
    KafkaReader reader(topicsFor(prefix), "", kReadCommitted);
    std::vector<Record> records;
    std::set<int> seen;
    eventually(
        [&] {
            for (auto& r : reader.readUntil(static_cast<std::size_t>(-1), 1s)) {
                outboxd::v1::Event e;
                REQUIRE(e.ParseFromString(r.value));
                seen.insert(std::stoi(e.id().substr(24)));
                records.push_back(std::move(r));
            }
            return seen.size() >= static_cast<std::size_t>(count);
        },
        300s);
    for (auto& r : reader.drain(5s)) records.push_back(std::move(r));
    INFO(tail(log, 8000));
    REQUIRE(seen.size() == static_cast<std::size_t>(count));
    auto decoded = decodeAll(records);
    std::map<int, int> times;
    std::map<std::string, int> last_seq_per_key;
    for (const auto& d : decoded) {
        ++times[d.seq];
        checkContent(d, prefix);
        const std::string& key = *d.record.key;
        auto it = last_seq_per_key.find(key);
        if (it != last_seq_per_key.end()) {
            INFO("key " << key << ": seq " << d.seq << " after " << it->second);
            CHECK(it->second < d.seq);
        }
        last_seq_per_key[key] = d.seq;
    }
    int duplicated = 0;
    for (const auto& [seq, n] : times) {
        if (n != 1) ++duplicated;
    }
    CHECK(duplicated == 0);
    CHECK(records.size() == static_cast<std::size_t>(count));
}

}  // namespace

TEST_CASE("exactly_once_survives_sigkills_without_duplicates", "[integration]") {
    // GIVEN outboxd in exactly-once mode, committing a Kafka transaction every 50 ms
    auto db = Database::create("it_eos_kill");
    Pg pg(db.dsn);
    Daemon daemon("it_eos_kill", eosConfig(db, "it_eos_kill", 50));
    daemon.start();
    waitStreaming(pg, db.name, daemon);

    // WHEN 600 events per kill, in transactions of 5, are written while the relay is SIGKILLed
    // 10 times (OUTBOXD_IT_EOS_KILLS, e.g. 100 for a long run) at random points (some inside a
    // Kafka transaction, some between its commit and the slot's confirmation), restarted at once
    const char* kills_env = std::getenv("OUTBOXD_IT_EOS_KILLS");
    const int wanted_kills = kills_env != nullptr ? std::max(1, std::atoi(kills_env)) : 10;
    const int events = 600 * wanted_kills;
    std::atomic<bool> writer_done{false};
    std::thread writer([&] {
        Pg wpg(db.dsn);
        writeEvents(wpg, 0, events, 5, 15ms);
        writer_done = true;
    });
    int kills = 0;
    std::mt19937 rng(std::random_device{}());
    while (kills < wanted_kills) {
        const auto started_at = confirmedFlush(pg, db.name);
        eventually([&] { return confirmedFlush(pg, db.name) > started_at; }, 60s);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 700));
        daemon.kill9();
        ++kills;
        daemon.start();
    }
    writer.join();

    // THEN a read_committed consumer sees each event exactly once, in commit order per key
    INFO("kills: " << kills << ", events: " << events);
    expectExactlyOnce("it_eos_kill", events, daemon.log());
    // AND the restarts read the checkpoint back
    CHECK(daemon.log().find("exactly-once: Kafka holds slot it_eos_kill up to") != std::string::npos);
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("second_exactly_once_relay_fences_the_first", "[integration]") {
    // GIVEN relay A in exactly-once mode with a Kafka transaction open (a steady stream, commits every 2 s)
    auto db = Database::create("it_eos_fence");
    Pg pg(db.dsn);
    const std::string config = eosConfig(db, "it_eos_fence", 2000);
    Daemon a("it_eos_fence_a", config);
    a.start();
    waitStreaming(pg, db.name, a);
    std::atomic<bool> writer_done{false};
    std::thread writer([&] {
        Pg wpg(db.dsn);
        writeEvents(wpg, 0, 3000, 5, 20ms);
        writer_done = true;
    });
    const auto start = confirmedFlush(pg, db.name);
    REQUIRE(eventually([&] { return confirmedFlush(pg, db.name) > start; }, 60s));
    std::this_thread::sleep_for(500ms);

    // WHEN A freezes (SIGSTOP), its walsender is terminated, and relay B takes the slot over
    a.signal(SIGSTOP);
    pg.exec(fmt::format("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{}'",
                        db.name));
    Daemon b("it_eos_fence_b", config);
    b.start();
    const auto before_b = confirmedFlush(pg, db.name);
    REQUIRE(eventually([&] { return b.log().find("streaming from slot") != std::string::npos; }, 60s));
    REQUIRE(eventually([&] { return confirmedFlush(pg, db.name) > before_b; }, 60s));

    // AND A wakes up
    a.signal(SIGCONT);

    // THEN A stops with exit 1 and a message naming the transactional id
    auto code = a.waitExit(120s);
    INFO("A: " << tail(a.log()));
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    const auto id = fmt::format("transactional.id 'outboxd-{}-{}' was fenced",
                                *pg.scalar("SELECT system_identifier FROM pg_control_system()"), db.name);
    CHECK(a.log().find(id) != std::string::npos);

    // AND B delivers every event exactly once to a read_committed consumer (A's open transaction was aborted)
    writer.join();
    expectExactlyOnce("it_eos_fence", 3000, b.log());
    CHECK(b.running());
    CHECK(b.terminate() == 0);
}

TEST_CASE("exactly_once_transaction_outliving_the_timeout_stops_with_the_fix", "[integration]") {
    // GIVEN outboxd in exactly-once mode with transaction.timeout.ms 1000, and 10 events delivered
    auto db = Database::create("it_eos_big");
    Pg pg(db.dsn);
    Daemon daemon("it_eos_big", withLinesAfter(eosConfig(db, "it_eos_big", 50), "  kafka:",
                                               "    properties:\n      transaction.timeout.ms: 1000\n"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    writeEvents(pg, 0, 10, 5);
    const std::uint64_t after_small = currentLsn(pg);
    REQUIRE(eventually([&] { return confirmedFlush(pg, db.name) >= after_small; }, 120s));

    // WHEN one PostgreSQL transaction writes 300,000 outbox rows (more than can be produced within 1 s)
    pg.exec("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) SELECT gen_random_uuid(), 'user', "
            "'user-' || (g % 37), 'userRegistered', '{\"seq\": -1}' FROM generate_series(1, 300000) g");
    const std::uint64_t after_big = currentLsn(pg);

    // THEN outboxd stops with exit 1, naming the transaction and the settings to raise
    auto code = daemon.waitExit(300s);
    INFO(tail(daemon.log()));
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK(daemon.log().find("has kept the Kafka transaction open") != std::string::npos);
    CHECK(daemon.log().find("Raise sink.kafka.properties.transaction.timeout.ms") != std::string::npos);
    CHECK(daemon.log().find("(sink_transaction_too_long)") != std::string::npos);
    // AND the slot was not confirmed past the large transaction
    CHECK(confirmedFlush(pg, db.name) < after_big);
    // AND a read_committed consumer sees the 10 events and none of the aborted transaction's
    KafkaReader reader(topicsFor("it_eos_big"), "", kReadCommitted);
    auto records = reader.readUntil(10, 60s);
    auto extra = reader.drain(5s);
    CHECK(records.size() == 10);
    CHECK(extra.empty());
}

TEST_CASE("exactly_once_survives_a_broker_and_a_postgres_restart", "[integration]") {
    // GIVEN outboxd in exactly-once mode and a steady stream of 3,000 events
    auto db = Database::create("it_eos_restarts");
    Pg pg(db.dsn);
    Daemon daemon("it_eos_restarts", eosConfig(db, "it_eos_restarts", 100));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    std::thread writer([&] { writeEventsResilient(db.dsn, 0, 3000, 5, 10ms); });
    auto progressed = [&] {
        const auto at = confirmedFlush(pg, db.name);
        return eventually([&] { return confirmedFlush(pg, db.name) > at; }, 120s);
    };
    REQUIRE(progressed());

    // WHEN the broker stops for a few seconds mid-stream (Kafka transactions fail or wait and
    // are aborted or committed), and then PostgreSQL restarts
    ctl("kafka-stop");
    std::this_thread::sleep_for(5s);
    ctl("kafka-start");
    CHECK(progressed());
    ctl("pg-restart");
    Pg pg2(db.dsn);
    REQUIRE(eventually([&] { return confirmedFlush(pg2, db.name) > 0; }, 60s));
    writer.join();

    // THEN the relay is still running, and a read_committed consumer sees each event exactly
    // once, in commit order per key
    CHECK(daemon.running());
    expectExactlyOnce("it_eos_restarts", 3000, daemon.log());
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("exactly_once_restart_skips_transactions_kafka_already_holds", "[integration]") {
    // GIVEN a slot, a copy of it at the same start position, and outboxd in exactly-once mode
    // that delivered 100 events in 20 transactions through the slot and stopped cleanly
    auto db = Database::create("it_eos_skip");
    Pg pg(db.dsn);
    pg.exec(fmt::format("SELECT pg_create_logical_replication_slot('{}', 'pgoutput')", db.name));
    pg.exec(fmt::format("SELECT pg_copy_logical_replication_slot('{0}', '{0}_copy')", db.name));
    const std::string config = eosConfig(db, "it_eos_skip", 50);
    {
        Daemon first("it_eos_skip_1", config);
        first.start();
        waitStreaming(pg, db.name, first);
        writeEvents(pg, 0, 100, 5);
        const std::uint64_t after = currentLsn(pg);
        REQUIRE(eventually([&] { return confirmedFlush(pg, db.name) >= after; }, 120s));
        CHECK(first.terminate() == 0);
    }

    // WHEN the slot is replaced by the copy, which the server streams from the start again (as a
    // crash between a Kafka commit and the slot's confirmation, or a server that lost the
    // confirmation, would make it), and outboxd starts on it and 10 more events are written
    pg.exec(fmt::format("SELECT pg_drop_replication_slot('{}')", db.name));
    pg.exec(fmt::format("SELECT pg_copy_logical_replication_slot('{0}_copy', '{0}')", db.name));
    pg.exec(fmt::format("SELECT pg_drop_replication_slot('{}_copy')", db.name));
    Daemon second("it_eos_skip_2", config);
    second.start();
    waitStreaming(pg, db.name, second);
    writeEvents(pg, 100, 10, 5);

    // THEN the 20 transactions Kafka holds are skipped, counted and logged, and a read_committed
    // consumer sees each of the 110 events exactly once
    expectExactlyOnce("it_eos_skip", 110, second.log());
    // (at least the 20: before PostgreSQL 15 pgoutput also sends the empty transactions of the
    // first start's publication set-up, which are skipped as well)
    const std::string log = second.log();
    const auto at = log.find(" transactions that Kafka already held");
    REQUIRE(at != std::string::npos);
    const auto from = log.rfind("skipped ", at);
    REQUIRE(from != std::string::npos);
    CHECK(std::stoi(log.substr(from + 8, at - from - 8)) >= 20);
    CHECK(second.terminate() == 0);
}
