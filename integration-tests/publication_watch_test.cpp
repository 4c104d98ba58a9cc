// cdc::PublicationWatch against a real PostgreSQL: the check that bounds the slot's confirmation
// comes soon after the relay asks for a later position, and not before its interval otherwise.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "cdc/publication_watch.h"
#include "support.h"
#include "workload.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

// Voluntary context switches (sleeps that ended in a wake-up) of this process's thread named
// `name`, from /proc/self/task/*/status; -1 when there is no such thread.
long wakeupsOfThread(const std::string& name) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string n;
        std::getline(comm, n);
        if (n != name) continue;
        std::ifstream status(task.path() / "status");
        for (std::string line; std::getline(status, line);) {
            if (line.starts_with("voluntary_ctxt_switches:")) return std::stol(line.substr(24));
        }
    }
    return -1;
}

// A publication `name` of the outbox and a watch on it (interval 60 s, longer than any test;
// min_gap 50 ms), started and past its first check.
std::unique_ptr<outboxd::cdc::PublicationWatch> startWatch(const Database& db, Pg& pg, const std::string& name) {
    pg.exec("CREATE PUBLICATION " + name + " FOR TABLE outbox");
    auto watch = std::make_unique<outboxd::cdc::PublicationWatch>(outboxd::cdc::PublicationWatchOptions{
        db.dsn, name, {outboxd::config::TableName{"public", "outbox"}}, 60s, 50ms});
    watch->start();
    REQUIRE(eventually([&] { return watch->verified().isValid(); }, 30s));
    return watch;
}

}  // namespace

TEST_CASE("publication_watch_checks_soon_when_asked_and_waits_its_interval_otherwise", "[integration][source]") {
    // GIVEN a publication of the outbox, and a watch on it whose interval (60 s) outlasts the test
    auto db = Database::create("it_pubwatch");
    Pg pg(db.dsn);
    const auto started = startWatch(db, pg, "it_pubwatch");
    auto& watch = *started;
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

TEST_CASE("publication_watch_is_not_woken_by_each_request_while_one_is_pending", "[integration][source]") {
    // GIVEN a watch (min_gap 50 ms) that has made its first check
    auto db = Database::create("it_pubwatch_wake");
    Pg pg(db.dsn);
    const auto started = startWatch(db, pg, "it_pubwatch_wake");
    auto& watch = *started;
    const long before = wakeupsOfThread("outboxd-watch");
    REQUIRE(before >= 0);

    // WHEN the relay asks for a later position every millisecond for 2 s (as acknowledgements
    // come at 1,000 events/s), each past what a check can verify, so a request is always pending
    const std::uint64_t base = watch.verified().value() + 1'000'000;
    for (int i = 0; i < 2000; ++i) {
        watch.want(outboxd::cdc::Lsn{base + static_cast<std::uint64_t>(i)});
        std::this_thread::sleep_for(1ms);
    }
    const long woken = wakeupsOfThread("outboxd-watch") - before;

    // THEN the watch checks on its min_gap (about 40 checks of a few round trips each), and is not
    // woken once per request: fewer than 2,000 requests' worth of wake-ups
    INFO("watch thread wake-ups during 2,000 requests: " << woken);
    CHECK(woken < 600);
    CHECK_FALSE(watch.failure().has_value());
    watch.stop();
}
