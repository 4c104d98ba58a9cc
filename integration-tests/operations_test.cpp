// What an operator relies on: an active/standby pair on one slot, a clear exit when the slot
// is dropped, SASL/SCRAM to Kafka without leaking the password, ALTER TABLE under a running
// relay, and the metrics, health endpoints and JSON logs.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <sstream>
#include <thread>

#include "support.h"
#include "workload.h"

using namespace itest;

namespace {

std::optional<std::string> activePid(Pg& pg, const std::string& slot) {
    return pg.scalar(fmt::format("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{}'", slot));
}

}  // namespace

TEST_CASE("two_relays_on_one_slot_form_an_active_standby_pair", "[integration][operations]") {
    // GIVEN relay A streaming and relay B started on the same slot
    auto db = Database::create("it_pair");
    Pg pg(db.dsn);
    const int port_b = freePort();
    Daemon a("it_pair_a", relayConfig(db, "it_pair"));
    Daemon b("it_pair_b", relayConfig(db, "it_pair", "", port_b));
    a.start();
    waitStreaming(pg, db.name, a);
    const auto pid_a = activePid(pg, db.name);
    b.start();

    // THEN B waits: it is alive but not ready, and A keeps delivering
    CHECK(eventually([&] { return b.log().find("in use") != std::string::npos; }, 30s));
    CHECK(httpGet(port_b, "/healthz").status == 200);
    CHECK(httpGet(port_b, "/readyz").status == 503);
    writeEvents(pg, 0, 100, 5);
    KafkaReader reader(topicsFor("it_pair"));
    awaitAll(reader, "it_pair", 0, 100, 60s);
    CHECK(activePid(pg, db.name) == pid_a);

    // WHEN A is killed
    a.kill9();
    const auto killed_at = std::chrono::steady_clock::now();

    // THEN B streams within 10 s and nothing is lost
    bool took_over = eventually([&] { return httpGet(port_b, "/readyz").status == 200; }, 20s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
    INFO("standby took over after " << took.count() << " ms\n" << tail(b.log()));
    REQUIRE(took_over);
    CHECK(took < 10s);
    writeEvents(pg, 100, 100, 5);
    awaitAll(reader, "it_pair", 100, 100, 60s);
    CHECK(b.terminate() == 0);
}

TEST_CASE("slot_dropped_under_a_running_relay_exits_1", "[integration][operations]") {
    // GIVEN outboxd streaming
    auto db = Database::create("it_drop");
    Pg pg(db.dsn);
    Daemon daemon("it_drop", relayConfig(db, "it_drop"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);

    // WHEN the slot is dropped (its walsender terminated first, as PostgreSQL requires)
    bool dropped = eventually(
        [&] {
            try {
                pg.exec(fmt::format("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE "
                                    "slot_name = '{0}' AND active_pid IS NOT NULL; "
                                    "SELECT pg_drop_replication_slot('{0}')",
                                    db.name));
                return true;
            } catch (const std::exception&) {
                return false;
            }
        },
        30s);
    REQUIRE(dropped);

    // THEN outboxd exits 1 saying what happened and what to do, and does not recreate it
    auto code = daemon.waitExit(60s);
    INFO(daemon.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("disappeared") && Catch::Contains("Reconcile"));
    CHECK_FALSE(pg.scalar(fmt::format("SELECT 1 FROM pg_replication_slots WHERE slot_name = '{}'", db.name)));
}

TEST_CASE("sasl_scram_authenticates_and_a_wrong_password_is_a_clear_error", "[integration][operations]") {
    const char* sasl_brokers = std::getenv("OUTBOXD_IT_KAFKA_SASL_BROKERS");
    REQUIRE(sasl_brokers != nullptr);
    auto db = Database::create("it_sasl");
    Pg pg(db.dsn);
    auto config = [&](const std::string& password_env) {
        return fmt::format(R"(source:
  postgres:
    dsn: "{}"
    slot: {}
    publication: {}
routing:
  topic: "it_sasl.{{aggregatetype}}"
sink:
  kafka:
    brokers: "{}"
    properties:
      security.protocol: SASL_PLAINTEXT
      sasl.mechanisms: SCRAM-SHA-256
      sasl.username: outboxd
      sasl.password: "${{{}}}"
metrics:
  listen: ""
log:
  level: debug
)",
                           db.dsn, db.name, db.name, sasl_brokers, password_env);
    };
    ::setenv("IT_KAFKA_PASSWORD", "outboxd-test-secret", 1);
    ::setenv("IT_KAFKA_WRONG_PASSWORD", "not-the-password-4711", 1);

    // GIVEN the right SCRAM credentials, WHEN events are written, THEN they are published
    {
        Daemon daemon("it_sasl_ok", config("IT_KAFKA_PASSWORD"));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        writeEvents(pg, 0, 50, 5);
        KafkaReader reader(topicsFor("it_sasl"), sasl_brokers,
                           {{"security.protocol", "SASL_PLAINTEXT"},
                            {"sasl.mechanisms", "SCRAM-SHA-256"},
                            {"sasl.username", "outboxd"},
                            {"sasl.password", "outboxd-test-secret"}});
        awaitAll(reader, "it_sasl", 0, 50, 60s);
        CHECK(daemon.terminate() == 0);
        CHECK(daemon.log().find("outboxd-test-secret") == std::string::npos);
    }

    // GIVEN a wrong password, THEN outboxd exits 1 with a clear message that never shows it
    Daemon wrong("it_sasl_wrong", config("IT_KAFKA_WRONG_PASSWORD"));
    wrong.start();
    writeEvents(pg, 50, 5, 5);
    auto code = wrong.waitExit(90s);
    INFO(tail(wrong.log()));
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(wrong.log(), Catch::Contains("credentials") && Catch::Contains("sasl.password"));
    CHECK(wrong.log().find("not-the-password-4711") == std::string::npos);
}

TEST_CASE("alter_table_under_a_running_relay", "[integration][operations]") {
    // GIVEN outboxd streaming
    auto db = Database::create("it_alter");
    Pg pg(db.dsn);
    Daemon daemon("it_alter", relayConfig(db, "it_alter"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    writeEvents(pg, 0, 10, 5);

    // WHEN a column is added in front of the mapped ones' positions and another type changes
    pg.exec("ALTER TABLE outbox ADD COLUMN tenant text DEFAULT 'acme'");
    pg.exec("ALTER TABLE outbox ALTER COLUMN aggregateid TYPE text");
    writeEvents(pg, 10, 10, 5);

    // THEN events keep flowing, columns found by name
    KafkaReader reader(topicsFor("it_alter"));
    awaitAll(reader, "it_alter", 0, 20, 60s);
    CHECK(daemon.running());

    // WHEN a mapped column is renamed
    Pg(db.dsn).exec("ALTER TABLE outbox RENAME COLUMN aggregatetype TO kind");
    const auto confirmed_before = confirmedFlush(pg, db.name);
    Pg(db.dsn).exec("INSERT INTO outbox (id, kind, aggregateid, type, payload) VALUES "
                    "('00000000-0000-4000-8000-000000099999', 'user', 'x', 'T', '{}')");

    // THEN the relay stops, naming the column and the table, before publishing or confirming it
    auto code = daemon.waitExit(60s);
    INFO(tail(daemon.log()));
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("'aggregatetype'") && Catch::Contains("public.outbox"));
    auto extra = reader.drain(3s);
    for (const auto& r : extra) CHECK(r.headers.at("id") != "00000000-0000-4000-8000-000000099999");
    CHECK(confirmedFlush(pg, db.name) <= std::max(confirmed_before, currentLsn(pg)));
}

TEST_CASE("metrics_health_and_json_logs", "[integration][operations]") {
    // GIVEN outboxd with metrics, slot checks, a heartbeat and JSON logs
    auto db = Database::create("it_metrics");
    Pg pg(db.dsn);
    const int port = freePort();
    std::string yaml = relayConfig(db, "it_metrics", "", port);
    yaml.replace(yaml.find("  level: debug\n"), 15, "  level: info\n  format: json\n");
    yaml.replace(yaml.find("    publication: it_metrics\n"), 28,
                 "    publication: it_metrics\n    slot_check_interval_ms: 300\n    heartbeat_interval_ms: 300\n");
    Daemon d("it_metrics", yaml);
    d.start();
    waitStreaming(pg, db.name, d);
    writeEvents(pg, 0, 10, 5);
    KafkaReader reader(topicsFor("it_metrics"));
    awaitAll(reader, "it_metrics", 0, 10, 60s);

    // THEN /healthz and /readyz answer 200 while streaming
    CHECK(httpGet(port, "/healthz").status == 200);
    CHECK(httpGet(port, "/readyz").status == 200);
    // AND /metrics has the spec's metrics with the values of what happened
    std::string text;
    bool settled = eventually(
        [&] {
            text = httpGet(port, "/metrics").body;
            auto published = metricValue(text, "outboxd_events_published_total");
            auto beats = metricValue(text, R"(outboxd_heartbeats_total{result="ok"})");
            auto reserved = metricValue(text, R"(outboxd_slot_wal_status{status="reserved"})");
            return published == 10.0 && beats.value_or(0) >= 1 && reserved == 1.0;
        },
        30s);
    INFO(text);
    CHECK(settled);
    for (const char* name : {"outboxd_events_failed_total", "outboxd_replication_lag_bytes",
                             "outboxd_confirmed_flush_lsn", "outboxd_event_latency_seconds_count",
                             "outboxd_kafka_in_flight_messages", "outboxd_replication_lag_seconds",
                             "outboxd_slot_retained_wal_bytes", "outboxd_streaming", "outboxd_reconnects_total",
                             "outboxd_build_info"}) {
        CHECK_THAT(text, Catch::Contains(name));
    }
    CHECK(metricValue(text, "outboxd_event_latency_seconds_count") == 10.0);
    CHECK(metricValue(text, "outboxd_streaming") == 1.0);
    CHECK(metricValue(text, R"(outboxd_topic_events_published_total{topic="it_metrics.user"})").value_or(0) > 0);
    CHECK(metricValue(text, R"(outboxd_logical_messages_total{transactional="false"})").value_or(0) >= 1);
    auto confirmed = metricValue(text, "outboxd_confirmed_flush_lsn");
    REQUIRE(confirmed);
    CHECK(*confirmed > 0);

    // AND every log line is a JSON object
    CHECK(d.terminate() == 0);
    std::istringstream lines(d.log());
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
        INFO(line);
        CHECK(line.front() == '{');
        CHECK(line.back() == '}');
        CHECK_THAT(line, Catch::Contains(R"("level":")") && Catch::Contains(R"("msg":")"));
    }
    CHECK(n >= 3);
}

TEST_CASE("tls_verify_full_to_postgres", "[integration][operations]") {
    const char* ca = std::getenv("OUTBOXD_IT_PG_CA");
    const char* other_ca = std::getenv("OUTBOXD_IT_PG_OTHER_CA");
    REQUIRE(ca != nullptr);
    REQUIRE(other_ca != nullptr);
    auto db = Database::create("it_tls");
    Pg pg(db.dsn);
    auto tlsConfig = [&](const char* root) {
        Database tls_db = db;
        tls_db.dsn = fmt::format("host=localhost port={} user=postgres dbname={} sslmode=verify-full sslrootcert={}",
                                 std::getenv("OUTBOXD_IT_PG_PORT"), db.name, root);
        return relayConfig(tls_db, "it_tls");
    };

    // GIVEN sslmode=verify-full with the CA that signed the server's certificate
    {
        Daemon daemon("it_tls", tlsConfig(ca));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        // THEN the replication connection is encrypted, and events flow
        auto ssl = pg.scalar(fmt::format(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_replication_slots r ON r.active_pid = s.pid WHERE r.slot_name = "
            "'{}'",
            db.name));
        CHECK(ssl == std::optional<std::string>("t"));
        writeEvents(pg, 0, 10, 5);
        KafkaReader reader(topicsFor("it_tls"));
        awaitAll(reader, "it_tls", 0, 10, 60s);
        CHECK(daemon.terminate() == 0);
    }

    // GIVEN a CA that did not sign the server's certificate, THEN exit 1 saying what to check
    Daemon wrong("it_tls_wrong", tlsConfig(other_ca));
    wrong.start();
    auto code = wrong.waitExit(60s);
    INFO(wrong.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(wrong.log(), Catch::Contains("TLS verification") && Catch::Contains("sslrootcert"));
}

TEST_CASE("missing_publication_and_invalidated_slot_exit_1", "[integration][operations]") {
    auto db = Database::create("it_slotlost");
    Pg pg(db.dsn);

    // GIVEN no publication and create_publication: false, THEN exit 1 with the statement to run
    {
        std::string yaml = relayConfig(db, "it_slotlost");
        yaml.replace(yaml.find("    publication: it_slotlost\n"), 29,
                     "    publication: it_slotlost\n    create_publication: false\n");
        Daemon daemon("it_nopub", yaml);
        daemon.start();
        auto code = daemon.waitExit(60s);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("CREATE PUBLICATION"));
    }

    // GIVEN a slot whose WAL was removed (max_slot_wal_keep_size exceeded while outboxd was down)
    Daemon daemon("it_slotlost", relayConfig(db, "it_slotlost"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    daemon.terminate();
    Pg admin(Env::get().pg_dsn);
    admin.exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    admin.exec("SELECT pg_reload_conf()");
    struct Restore {
        Pg& admin;
        ~Restore() {
            admin.exec("ALTER SYSTEM RESET max_slot_wal_keep_size");
            admin.exec("SELECT pg_reload_conf()");
        }
    } restore{admin};
    pg.exec("CREATE TABLE filler (v text)");
    bool lost = eventually(
        [&] {
            pg.exec("INSERT INTO filler SELECT repeat(md5(g::text), 32) FROM generate_series(1, 20000) g");
            pg.exec("SELECT pg_switch_wal()");
            pg.exec("CHECKPOINT");
            return pg.scalar(fmt::format("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{}'",
                                         db.name)) == std::optional<std::string>("lost");
        },
        120s);
    REQUIRE(lost);

    // WHEN outboxd starts, THEN it exits 1 saying the slot is lost and what to do
    Daemon again("it_slotlost_again", relayConfig(db, "it_slotlost"));
    again.start();
    auto code = again.waitExit(60s);
    INFO(again.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(again.log(), Catch::Contains("wal_status = lost") && Catch::Contains("pg_drop_replication_slot"));
}

TEST_CASE("partitioned_outbox_is_published_under_its_own_name", "[integration][operations]") {
    // GIVEN an outbox table partitioned by aggregate type
    auto db = Database::create("it_parts");
    Pg pg(db.dsn);
    pg.exec(R"(
        DROP TABLE outbox;
        CREATE TABLE outbox (
            id uuid NOT NULL,
            aggregatetype varchar(255) NOT NULL,
            aggregateid varchar(255) NOT NULL,
            type varchar(255) NOT NULL,
            payload jsonb,
            PRIMARY KEY (id, aggregatetype)
        ) PARTITION BY LIST (aggregatetype);
        CREATE TABLE outbox_user PARTITION OF outbox FOR VALUES IN ('user');
        CREATE TABLE outbox_group PARTITION OF outbox FOR VALUES IN ('group');
        CREATE TABLE outbox_membership PARTITION OF outbox FOR VALUES IN ('membership');
    )");

    // WHEN outboxd creates its publication and events are written to every partition
    {
        Daemon daemon("it_parts", relayConfig(db, "it_parts"));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        writeEvents(pg, 0, 30, 5);
        // THEN they arrive as rows of public.outbox, none skipped
        KafkaReader reader(topicsFor("it_parts"));
        awaitAll(reader, "it_parts", 0, 30, 60s);
        CHECK(daemon.terminate() == 0);
    }

    // GIVEN a publication that publishes through the partitions' names, THEN outboxd refuses it
    pg.exec("ALTER PUBLICATION it_parts SET (publish_via_partition_root = false)");
    Daemon again("it_parts_leaf", relayConfig(db, "it_parts"));
    again.start();
    auto code = again.waitExit(60s);
    INFO(again.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(again.log(), Catch::Contains("publish_via_partition_root = true"));
}
