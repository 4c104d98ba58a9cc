// cdc::PublicationWatch against a real PostgreSQL: the check that bounds the slot's confirmation
// comes soon after the relay asks for a later position, and not before its interval otherwise.
#include <catch2/catch.hpp>

#include <thread>

#include "cdc/publication_watch.h"
#include "support.h"
#include "workload.h"

using namespace itest;
using namespace std::chrono_literals;

TEST_CASE("publication_watch_checks_soon_when_asked_and_waits_its_interval_otherwise", "[integration][source]") {
    // GIVEN a publication of the outbox, and a watch on it whose interval (60 s) outlasts the test
    auto db = Database::create("it_pubwatch");
    Pg pg(db.dsn);
    pg.exec("CREATE PUBLICATION it_pubwatch FOR TABLE outbox");
    outboxd::cdc::PublicationWatch watch(outboxd::cdc::PublicationWatchOptions{
        db.dsn, "it_pubwatch", {outboxd::config::TableName{"public", "outbox"}}, 60s, 50ms});
    watch.start();
    REQUIRE(eventually([&] { return watch.verified().isValid(); }, 30s));
    const auto first = watch.verified();

    // WHEN rows are committed and nobody asks for a position past the first check
    writeEvents(pg, 0, 10, 5);
    const outboxd::cdc::Lsn written{parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()::text"))};
    REQUIRE(written > first);
    // THEN no check runs before the interval: verified() stays where the first check left it
    std::this_thread::sleep_for(2s);
    CHECK(watch.verified() == first);

    // WHEN the relay says it could confirm up to the rows' end
    watch.want(written);
    // THEN a check follows (well before the 60 s interval) and verifies at least that far
    CHECK(eventually([&] { return watch.verified() >= written; }, 20s));
    // AND asking for what is already verified starts no further check
    const auto verified = watch.verified();
    watch.want(verified);
    std::this_thread::sleep_for(1s);
    CHECK(watch.verified() == verified);
    CHECK_FALSE(watch.failure().has_value());
    watch.stop();
}
