// What an operator sees of a standby: it waits on the slot quietly (the "in use" line once, not
// on every retry) and builds no Kafka producer until the slot is its own.
#include <catch2/catch.hpp>

#include <thread>

#include "support.h"
#include "workload.h"

using namespace itest;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("standby_waits_quietly_and_builds_no_producer", "[integration][ops]") {
    // GIVEN relay A streaming and relay B (debug logs) started on the same slot
    auto db = Database::create("it_quiet");
    Pg pg(db.dsn);
    Daemon a("it_quiet_a", relayConfig(db, "it_quiet"));
    Daemon b("it_quiet_b", relayConfig(db, "it_quiet"));
    a.start();
    waitStreaming(pg, db.name, a);
    b.start();
    REQUIRE(eventually([&] { return b.log().find("in use") != std::string::npos; }, 30s));

    // WHEN B retries for 10 s (about five attempts at the 2 s cap)
    std::this_thread::sleep_for(10s);

    // THEN it said so once, and built no producer
    const std::string log = b.log();
    INFO(tail(log));
    CHECK(count(log, "in use") == 1);
    CHECK(count(log, "Kafka producer created") == 0);
    // AND A built exactly one
    CHECK(count(a.log(), "Kafka producer created") == 1);
    CHECK(b.terminate() == 0);
    CHECK(a.terminate() == 0);
}
