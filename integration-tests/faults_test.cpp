// Faults survived without loss: the database restarted, the walsender terminated, the broker
// stopped and started again. Each scenario checks that every event arrives, that nothing was
// confirmed before Kafka had it, and that the relay recovered without a restart of its own.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "support.h"
#include "workload.h"

using namespace itest;

TEST_CASE("postgres_restart_mid_stream_loses_nothing", "[integration][faults]") {
    // GIVEN outboxd streaming while events are written
    auto db = Database::create("it_pgrestart");
    Pg pg(db.dsn);
    Daemon daemon("it_pgrestart", relayConfig(db, "it_pgrestart"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    std::atomic<bool> done{false};
    std::thread writer([&] {
        writeEventsResilient(db.dsn, 0, 3000, 5, 3ms);
        done = true;
    });

    // WHEN PostgreSQL restarts mid-stream
    std::this_thread::sleep_for(1s);
    ctl("pg-restart");
    writer.join();

    // THEN every event arrives and the same process is still streaming
    KafkaReader reader(topicsFor("it_pgrestart"));
    awaitAll(reader, "it_pgrestart", 0, 3000, 180s);
    INFO(tail(daemon.log()));
    CHECK(daemon.running());
    CHECK_THAT(daemon.log(), Catch::Contains("retrying in"));
    Pg pg2(db.dsn);
    const auto end = currentLsn(pg2);
    CHECK(eventually([&] { return confirmedFlush(pg2, db.name) >= end; }, 60s));
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("walsender_terminated_mid_stream_loses_nothing", "[integration][faults]") {
    auto db = Database::create("it_terminate");
    Pg pg(db.dsn);
    Daemon daemon("it_terminate", relayConfig(db, "it_terminate"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    std::atomic<bool> done{false};
    std::thread writer([&] {
        Pg wpg(db.dsn);
        writeEvents(wpg, 0, 3000, 5, 3ms);
        done = true;
    });

    // WHEN its walsender is terminated, three times
    int terminated = 0;
    for (int i = 0; i < 3; ++i) {
        // Each termination waits for the relay to have reconnected (on a loaded machine a
        // reconnect can take longer than the pause between terminations).
        Pg admin(db.dsn);
        eventually(
            [&] {
                return admin.scalar(fmt::format("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{}'",
                                                db.name))
                    .has_value();
            },
            30s);
        std::this_thread::sleep_for(500ms);
        auto r = admin.scalar(fmt::format(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{}' AND active_pid "
            "IS NOT NULL",
            db.name));
        if (r && *r == "t") ++terminated;
    }
    writer.join();

    // THEN every event arrives, and the relay reconnected on its own
    KafkaReader reader(topicsFor("it_terminate"));
    awaitAll(reader, "it_terminate", 0, 3000, 180s);
    INFO(tail(daemon.log()));
    CHECK(terminated >= 2);
    CHECK(daemon.running());
    CHECK_THAT(daemon.log(), Catch::Contains("retrying in"));
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("kafka_down_then_back_loses_nothing", "[integration][faults]") {
    // GIVEN outboxd has delivered a first batch
    auto db = Database::create("it_kafkadown");
    Pg pg(db.dsn);
    const int metrics_port = freePort();
    Daemon daemon("it_kafkadown", relayConfig(db, "it_kafkadown", "", metrics_port));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    writeEvents(pg, 0, 100, 5);
    {
        KafkaReader reader(topicsFor("it_kafkadown"));
        awaitAll(reader, "it_kafkadown", 0, 100, 60s);
    }
    // WHEN the broker is stopped for 30 s while 500 more events are written
    ctl("kafka-stop");
    // The first transaction of the outage: any confirmation of it lies past this position.
    pg.exec("BEGIN;" + eventSql(100));
    const auto first_outage_change = parseLsn(*pg.scalar("SELECT pg_current_wal_insert_lsn()"));
    pg.exec("COMMIT");
    writeEvents(pg, 101, 499, 5);
    const auto after_writes = currentLsn(pg);
    std::uint64_t max_confirmed = 0;
    double max_in_flight = 0;
    for (int i = 0; i < 30; ++i) {
        std::this_thread::sleep_for(1s);
        max_confirmed = std::max(max_confirmed, confirmedFlush(pg, db.name));
        auto m = httpGet(metrics_port, "/metrics");
        if (auto v = metricValue(m.body, "outboxd_kafka_in_flight_messages")) max_in_flight = std::max(max_in_flight, *v);
    }
    // THEN nothing written during the outage was confirmed, and the relay held on
    INFO(tail(daemon.log()));
    CHECK(max_confirmed < first_outage_change);
    CHECK(max_in_flight > 0);
    CHECK(daemon.running());

    // AND when the broker is back, delivery resumes on its own and everything arrives
    ctl("kafka-start");
    KafkaReader reader(topicsFor("it_kafkadown"));
    awaitAll(reader, "it_kafkadown", 0, 600, 180s);
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= after_writes; }, 60s));
    CHECK(daemon.running());
    CHECK(daemon.terminate() == 0);
}
