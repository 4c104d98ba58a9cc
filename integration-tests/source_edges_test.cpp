// Issue 8, the source side, against a real PostgreSQL and Kafka: a lost slot is not recreated in
// silence, a publication that would not carry every insert is refused, a long decode is not
// presumed dead, permanent refusals and two_phase slots stop at connect, and a template naming a
// column the table lacks stops before anything is published.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "support.h"
#include "workload.h"

using namespace itest;

namespace {

std::optional<int> exitsSoon(Daemon& daemon) { return daemon.waitExit(std::chrono::seconds(45)); }

bool slotExists(Pg& pg, const std::string& slot) {
    return pg.scalar(fmt::format("SELECT 1 FROM pg_replication_slots WHERE slot_name = '{}'", slot)).has_value();
}

}  // namespace

TEST_CASE("lost_slot_is_not_recreated_without_consent", "[integration][source]") {
    // GIVEN outboxd streamed from its slot, stopped, and the slot was dropped (as in a failover)
    auto db = Database::create("it_lostslot");
    Pg pg(db.dsn);
    {
        Daemon first("it_lostslot_1", relayConfig(db, "it_lostslot"));
        first.start();
        waitStreaming(pg, db.name, first);
        writeEvents(pg, 0, 10, 5);
        KafkaReader reader(topicsFor("it_lostslot"));
        awaitAll(reader, "it_lostslot", 0, 10, 60s);
        REQUIRE(first.terminate() == 0);
    }
    pg.exec(fmt::format("SELECT pg_drop_replication_slot('{}')", db.name));
    writeEvents(pg, 10, 10, 5);

    // WHEN outboxd starts again (a supervisor's restart), THEN it refuses to create a new slot,
    // names the LSN it had confirmed and the flag that accepts the loss
    Daemon again("it_lostslot_2", relayConfig(db, "it_lostslot"));
    again.start();
    auto code = exitsSoon(again);
    INFO(again.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(again.log(), Catch::Contains("records that outboxd streamed from it") &&
                                Catch::Contains("confirmed LSN when outboxd last connected") &&
                                Catch::Contains("--accept-slot-loss"));
    CHECK_FALSE(slotExists(pg, db.name));

    // WHEN the operator accepts the loss once, THEN a new slot is created and streaming resumes
    Daemon accepted("it_lostslot_3", relayConfig(db, "it_lostslot"));
    accepted.start({"--accept-slot-loss"});
    waitStreaming(pg, db.name, accepted);
    CHECK(eventually([&] { return accepted.log().find("accepting (--accept-slot-loss)") != std::string::npos; }, 10s));
    writeEvents(pg, 20, 10, 5);
    KafkaReader reader(topicsFor("it_lostslot"));
    CHECK(awaitAll(reader, "it_lostslot", 20, 10, 60s) >= 10);
    CHECK(accepted.terminate() == 0);

    // AND a plain restart after that streams on (the record names the new slot's position)
    Daemon plain("it_lostslot_4", relayConfig(db, "it_lostslot"));
    plain.start();
    waitStreaming(pg, db.name, plain);
    CHECK(plain.terminate() == 0);
}

TEST_CASE("publication_that_would_not_carry_every_insert_is_refused", "[integration][source]") {
    auto db = Database::create("it_pubnarrow");
    Pg pg(db.dsn);

    // GIVEN an outbox without a primary key, WHEN outboxd creates the publication, THEN it
    // publishes inserts only, and the usual DELETE clean-up works
    pg.exec("ALTER TABLE outbox DROP CONSTRAINT outbox_pkey");
    {
        Daemon daemon("it_pubnarrow_a", relayConfig(db, "it_pubnarrow"));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        writeEvents(pg, 0, 10, 5);
        KafkaReader reader(topicsFor("it_pubnarrow"));
        awaitAll(reader, "it_pubnarrow", 0, 10, 60s);
        CHECK(pg.scalar("SELECT pubinsert::text || pubupdate::text || pubdelete::text FROM pg_publication WHERE "
                        "pubname = 'it_pubnarrow'") == std::optional<std::string>("truefalsefalse"));
        CHECK_NOTHROW(pg.exec("DELETE FROM outbox"));

        // WHEN the outbox table is renamed while streaming and a row goes into it, THEN outboxd
        // stops, naming both names, rather than skipping the row
        pg.exec("ALTER TABLE outbox RENAME TO outbox_old");
        pg.exec(fmt::format("INSERT INTO outbox_old (id, aggregatetype, aggregateid, type, payload) VALUES ('{}', "
                            "'user', 'user-1', 'userUpdated', '{{}}')",
                            eventId(99)));
        auto code = exitsSoon(daemon);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("public.outbox is now named public.outbox_old"));
        pg.exec("ALTER TABLE outbox_old RENAME TO outbox");
    }

    // GIVEN a publication that does not publish inserts, THEN outboxd refuses it with the fix
    pg.exec("ALTER PUBLICATION it_pubnarrow SET (publish = 'update, delete')");
    {
        Daemon daemon("it_pubnarrow_b", relayConfig(db, "it_pubnarrow"));
        daemon.start();
        auto code = exitsSoon(daemon);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("does not publish inserts") &&
                                     Catch::Contains("SET (publish = 'insert')"));
    }
    pg.exec("ALTER PUBLICATION it_pubnarrow SET (publish = 'insert')");

    // Row filters and column lists came with PostgreSQL 15: on 14 a publication has neither.
    const bool filters = std::stoi(*pg.scalar("SHOW server_version_num")) >= 150000;
    // GIVEN a row filter on the outbox table (PostgreSQL 15+), THEN outboxd refuses it
    if (filters) {
        pg.exec("ALTER PUBLICATION it_pubnarrow SET TABLE outbox WHERE (aggregatetype <> 'group')");
        Daemon daemon("it_pubnarrow_c", relayConfig(db, "it_pubnarrow"));
        daemon.start();
        auto code = exitsSoon(daemon);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("row filter") && Catch::Contains("DROP TABLE"));
    }

    // GIVEN a column list on the outbox table (PostgreSQL 15+), THEN outboxd refuses it too
    if (filters) {
        pg.exec("ALTER PUBLICATION it_pubnarrow SET TABLE outbox (id, aggregatetype, aggregateid, type)");
        Daemon daemon("it_pubnarrow_d", relayConfig(db, "it_pubnarrow"));
        daemon.start();
        auto code = exitsSoon(daemon);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("column list"));
    }

    // GIVEN the outbox table dropped from the publication outboxd streamed from, THEN outboxd
    // does not add it back in silence (its rows inserted meanwhile were never sent)
    pg.exec("ALTER PUBLICATION it_pubnarrow SET TABLE outbox");
    pg.exec("ALTER PUBLICATION it_pubnarrow DROP TABLE outbox");
    {
        Daemon daemon("it_pubnarrow_e", relayConfig(db, "it_pubnarrow"));
        daemon.start();
        auto code = exitsSoon(daemon);
        INFO(daemon.log());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("streamed from it before") && Catch::Contains("ADD TABLE"));
        CHECK_FALSE(pg.scalar("SELECT 1 FROM pg_publication_tables WHERE pubname = 'it_pubnarrow'"));
    }
}

TEST_CASE("long_decode_is_not_presumed_dead", "[integration][source]") {
    // GIVEN a short wal_sender_timeout (2 s: outboxd's silence limit is then its floor, 10 s) and
    // outboxd streaming
    auto db = Database::create("it_longdecode");
    Pg pg(db.dsn);
    pg.exec("ALTER DATABASE it_longdecode SET wal_sender_timeout = '2s'");
    pg.exec("CREATE TABLE filler (id bigint, v text)");
    Daemon daemon("it_longdecode", relayConfig(db, "it_longdecode"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);

    // WHEN a big transaction on another table keeps the walsender busy with nothing to send for
    // longer than that limit (its rows are decoded as they are written; the walsender pings only
    // a client it has not heard from, and outboxd sends a status update every second), and an
    // outbox row follows it
    const auto t0 = std::chrono::steady_clock::now();
    pg.exec("BEGIN; INSERT INTO filler SELECT g, 'x' FROM generate_series(1, 50000) g; SELECT pg_sleep(12); "
            "INSERT INTO filler SELECT g, 'y' FROM generate_series(1, 50000) g; COMMIT");
    const auto t_commit = std::chrono::steady_clock::now();
    const auto target = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()::text"));  // past the big transaction
    writeEvents(pg, 0, 1, 1);

    // THEN the session is not presumed dead (it asks the server for a reply first), the event is
    // delivered and the confirmed LSN passes the big transaction within 3 x wal_sender_timeout
    KafkaReader reader(topicsFor("it_longdecode"));
    bool moved = eventually([&] { return confirmedFlush(pg, db.name) > target; }, 6s);
    const auto t_moved = std::chrono::steady_clock::now();
    CHECK(moved);
    awaitAll(reader, "it_longdecode", 0, 1, 30s);
    auto secs = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0; };
    WARN(fmt::format("big transaction open {:.1f} s; confirmed LSN past it {:.1f} s after its commit",
                     secs(t_commit - t0), secs(t_moved - t_commit)));
    INFO(daemon.log());
    CHECK(daemon.log().find("presumed dead") == std::string::npos);
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("permanent_postgres_refusals_exit_1_with_the_fix", "[integration][source]") {
    auto db = Database::create("it_refusals");
    Pg admin(Env::get().pg_dsn);
    admin.exec("DROP ROLE IF EXISTS it_norepl");
    admin.exec("CREATE ROLE it_norepl LOGIN");
    struct Case {
        std::string name;
        std::string dsn;
        std::string fix;
    };
    const Case cases[] = {
        {"norepl", fmt::format("{} dbname={} user=it_norepl", Env::get().pg_host_port, db.name), "WITH REPLICATION"},
        {"nodb", fmt::format("{} dbname=it_no_such_database", Env::get().pg_host_port), "dbname"},
        {"sslmode", db.dsn + " sslmode=sometimes", "sslmode"},
        {"port", db.dsn + " port=five", "port"},
    };
    for (const auto& c : cases) {
        std::string yaml = relayConfig(db, "it_refusals");
        yaml.replace(yaml.find(db.dsn), db.dsn.size(), c.dsn);
        Daemon daemon("it_refusals_" + c.name, yaml);
        daemon.start();
        auto code = exitsSoon(daemon);
        INFO(c.name << ": " << daemon.log());
        REQUIRE(code.has_value());
        // 1 at runtime; 2 once --check-config's parse of the DSN catches the option first
        CHECK((*code == 1 || *code == 2));
        CHECK_THAT(daemon.log(), Catch::Contains(c.fix));
        CHECK(daemon.log().find("retrying") == std::string::npos);
    }
}

TEST_CASE("two_phase_slot_is_refused_at_connect", "[integration][source]") {
    // GIVEN a slot created with two_phase
    auto db = Database::create("it_twophase");
    Pg pg(db.dsn);
    pg.exec("SELECT pg_create_logical_replication_slot('it_twophase', 'pgoutput', false, true)");
    // WHEN outboxd starts on it, THEN it exits 1 at once saying what to do
    Daemon daemon("it_twophase", relayConfig(db, "it_twophase"));
    daemon.start();
    auto code = exitsSoon(daemon);
    INFO(daemon.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("two_phase") && Catch::Contains("source.postgres.slot"));
}

TEST_CASE("template_column_missing_is_refused_at_connect", "[integration][source]") {
    // GIVEN a routing.topic naming a column the outbox table does not have, and no row yet
    auto db = Database::create("it_tmplcol");
    Pg pg(db.dsn);
    std::string yaml = relayConfig(db, "it_tmplcol");
    yaml.replace(yaml.find("it_tmplcol.{aggregatetype}"), std::string("it_tmplcol.{aggregatetype}").size(),
                 "it_tmplcol.{region}");
    // WHEN outboxd starts, THEN it exits 1 before streaming, naming the template and the column
    Daemon daemon("it_tmplcol", yaml);
    daemon.start();
    auto code = exitsSoon(daemon);
    INFO(daemon.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("'region'") && Catch::Contains("routing.topic"));
    CHECK(daemon.log().find("streaming from slot") == std::string::npos);
}

TEST_CASE("publication_narrowed_while_streaming_stops_before_confirming", "[integration][source]") {
    // GIVEN outboxd streaming events from its outbox
    auto db = Database::create("it_pubdrop");
    Pg pg(db.dsn);
    Daemon daemon("it_pubdrop_d", relayConfig(db, "it_pubdrop"));
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    writeEvents(pg, 0, 10, 5);
    KafkaReader reader(topicsFor("it_pubdrop"));
    REQUIRE(awaitAll(reader, "it_pubdrop", 0, 10, 60s) >= 10);

    // WHEN the outbox table is dropped from the publication while streaming, and rows go into it
    // (pgoutput sends nothing for them, while keepalives go on)
    pg.exec("ALTER PUBLICATION it_pubdrop DROP TABLE outbox");
    const auto before_rows = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()::text"));
    writeEvents(pg, 10, 10, 5);

    // THEN outboxd stops (exit 1), naming the table and the fix, and the slot is not confirmed
    // past the point where the table left the publication
    auto code = exitsSoon(daemon);
    INFO(daemon.log());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("was removed from publication 'it_pubdrop'") &&
                                 Catch::Contains("ADD TABLE public.outbox"));
    const auto confirmed = confirmedFlush(pg, db.name);
    CHECK(confirmed > 0);
    CHECK(confirmed <= before_rows);
}

TEST_CASE("reconnect_to_another_cluster_is_refused", "[integration][source]") {
    // GIVEN outboxd streaming with a DSN that names two hosts: the test cluster first, then an
    // unrelated cluster holding a database, outbox table, publication and slot of the same names
    auto db = Database::create("it_othercluster");
    Pg pg(db.dsn);
    const int other_port = freePort();
    ctl(fmt::format("other-pg-start {}", other_port));
    struct Restore {
        ~Restore() {
            try {
                ctl("pg-start");
            } catch (...) {
            }
            try {
                ctl("other-pg-stop");
            } catch (...) {
            }
        }
    } restore;
    const std::string other_admin = fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", other_port);
    {
        Pg admin(other_admin);
        admin.exec("CREATE DATABASE it_othercluster");
    }
    Pg other(fmt::format("host=127.0.0.1 port={} user=postgres dbname=it_othercluster", other_port));
    other.exec(R"(CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL,
                  aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb);
                  CREATE PUBLICATION it_othercluster FOR TABLE outbox WITH (publish = 'insert');)");
    other.exec("SELECT pg_create_logical_replication_slot('it_othercluster', 'pgoutput')");
    const std::string other_slot_at =
        *other.scalar("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'it_othercluster'");
    other.exec("INSERT INTO outbox VALUES (gen_random_uuid(), 'user', '1', 'T', '{}')");
    const int main_port = std::stoi(*pg.scalar("SHOW port"));
    std::string config = relayConfig(db, "it_othercluster", "", freePort());
    const auto at = config.find(db.dsn);
    REQUIRE(at != std::string::npos);
    config.replace(at, db.dsn.size(),
                   fmt::format("host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=it_othercluster",
                               main_port, other_port));
    Daemon daemon("it_othercluster", config);
    daemon.start();
    waitStreaming(pg, db.name, daemon);
    // The test cluster's WAL well past the other's: a publication check that reached the other
    // cluster (libpq failing over on its own) could then never vouch for the walsender's last
    // position, and the fast shutdown below would wait for a confirmation that never comes.
    pg.exec("CREATE TABLE it_wal_filler (x int)");
    for (int i = 0; i < 3; ++i) {
        pg.exec("INSERT INTO it_wal_filler VALUES (1)");
        pg.exec("SELECT pg_switch_wal()");
    }
    REQUIRE(parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()::text")) >
            parseLsn(*other.scalar("SELECT pg_current_wal_lsn()::text")) + 16 * 1024 * 1024);

    // WHEN the test cluster goes away, so that the reconnect lands on the other one (the fast
    // shutdown waits until outboxd confirms all its walsender sent)
    ctl("pg-stop");

    // THEN outboxd refuses it and exits 1, naming both system identifiers' difference
    const auto code = daemon.waitExit(120s);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("belongs to another database cluster"));
    // AND nothing was streamed or confirmed from the other cluster's slot
    CHECK(*other.scalar("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'it_othercluster'") ==
          other_slot_at);
    CHECK(*other.scalar("SELECT active FROM pg_replication_slots WHERE slot_name = 'it_othercluster'") == "f");
}
