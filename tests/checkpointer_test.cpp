#include <catch2/catch.hpp>
#include <algorithm>
#include <random>
#include <vector>

#include "cdc/checkpointer.h"

using outboxd::cdc::Checkpointer;
using outboxd::cdc::Lsn;
using outboxd::cdc::PgTimestamp;

TEST_CASE("a transaction is confirmed once committed and every event acknowledged", "[checkpointer]") {
    Checkpointer cp{Lsn{100}};
    auto t = cp.begin(PgTimestamp{1});
    cp.addEvent(t);
    cp.addEvent(t);
    REQUIRE(cp.commit(t, Lsn{200}));
    CHECK(cp.confirmed() == Lsn{100});
    CHECK(cp.inFlight() == 2);
    REQUIRE(cp.acknowledge(t));
    CHECK(cp.confirmed() == Lsn{100});
    REQUIRE(cp.acknowledge(t));
    CHECK(cp.confirmed() == Lsn{200});
    CHECK(cp.inFlight() == 0);
    CHECK(cp.idle());
}

TEST_CASE("acknowledgements out of order advance only over the contiguous prefix", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    // Three transactions, one event each, on different partitions.
    std::vector<Checkpointer::TxnSerial> txns;
    for (std::uint64_t end : {100u, 200u, 300u}) {
        auto t = cp.begin(PgTimestamp{});
        cp.addEvent(t);
        REQUIRE(cp.commit(t, Lsn{end}));
        txns.push_back(t);
    }
    REQUIRE(cp.acknowledge(txns[2]));
    CHECK(cp.confirmed() == Lsn{10});
    REQUIRE(cp.acknowledge(txns[1]));
    CHECK(cp.confirmed() == Lsn{10});
    REQUIRE(cp.acknowledge(txns[0]));
    CHECK(cp.confirmed() == Lsn{300});
}

TEST_CASE("an acknowledged transaction behind an unacknowledged one is not confirmed", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    auto a = cp.begin(PgTimestamp{});
    cp.addEvent(a);
    cp.addEvent(a);
    REQUIRE(cp.commit(a, Lsn{100}));
    auto b = cp.begin(PgTimestamp{});
    cp.addEvent(b);
    REQUIRE(cp.commit(b, Lsn{200}));
    REQUIRE(cp.acknowledge(b));
    REQUIRE(cp.acknowledge(a));
    CHECK(cp.confirmed() == Lsn{10});
    REQUIRE(cp.acknowledge(a));
    CHECK(cp.confirmed() == Lsn{200});
}

TEST_CASE("an open transaction holds the confirmed LSN even when its events are acknowledged", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    auto a = cp.begin(PgTimestamp{});
    cp.addEvent(a);
    REQUIRE(cp.acknowledge(a));
    CHECK(cp.confirmed() == Lsn{10});
    cp.observeServerPosition(Lsn{500});
    CHECK(cp.confirmed() == Lsn{10});
    REQUIRE(cp.commit(a, Lsn{120}));
    CHECK(cp.confirmed() == Lsn{120});
}

TEST_CASE("a transaction without events is confirmed at commit when nothing precedes it", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    auto a = cp.begin(PgTimestamp{});
    REQUIRE(cp.commit(a, Lsn{50}));
    CHECK(cp.confirmed() == Lsn{50});
}

TEST_CASE("keepalive positions are confirmed only when nothing is in flight", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    cp.observeServerPosition(Lsn{40});
    CHECK(cp.confirmed() == Lsn{40});
    auto a = cp.begin(PgTimestamp{});
    cp.addEvent(a);
    REQUIRE(cp.commit(a, Lsn{60}));
    cp.observeServerPosition(Lsn{90});
    CHECK(cp.confirmed() == Lsn{40});
    REQUIRE(cp.acknowledge(a));
    CHECK(cp.confirmed() == Lsn{60});
    cp.observeServerPosition(Lsn{90});
    CHECK(cp.confirmed() == Lsn{90});
    // Never backwards.
    cp.observeServerPosition(Lsn{70});
    CHECK(cp.confirmed() == Lsn{90});
}

TEST_CASE("invariants: end LSN going backwards and stray acknowledgements are errors", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    auto a = cp.begin(PgTimestamp{});
    REQUIRE(cp.commit(a, Lsn{100}));
    auto b = cp.begin(PgTimestamp{});
    CHECK_FALSE(cp.commit(b, Lsn{90}));
    CHECK_FALSE(cp.acknowledge(a));
    CHECK_FALSE(cp.acknowledge(12345));
    auto c = cp.begin(PgTimestamp{});
    REQUIRE(cp.commit(c, Lsn{150}));
    CHECK_FALSE(cp.commit(c, Lsn{160}));
}

TEST_CASE("reset forgets everything in flight and restarts from the given LSN", "[checkpointer]") {
    Checkpointer cp{Lsn{10}};
    auto a = cp.begin(PgTimestamp{7});
    cp.addEvent(a);
    CHECK(cp.commitTime(a) == PgTimestamp{7});
    cp.reset(Lsn{20});
    CHECK(cp.inFlight() == 0);
    CHECK(cp.idle());
    CHECK(cp.confirmed() == Lsn{20});
    CHECK_FALSE(cp.acknowledge(a));
    auto b = cp.begin(PgTimestamp{});
    cp.addEvent(b);
    REQUIRE(cp.commit(b, Lsn{30}));
    REQUIRE(cp.acknowledge(b));
    CHECK(cp.confirmed() == Lsn{30});
}

TEST_CASE("randomised acknowledgement order never confirms past an unacknowledged event", "[checkpointer]") {
    auto seed = GENERATE(1u, 2u, 3u, 4u, 5u);
    std::mt19937 rng(seed);
    Checkpointer cp{Lsn{1}};
    struct Ev {
        Checkpointer::TxnSerial txn;
        std::uint64_t end;
    };
    std::vector<Ev> events;
    std::uint64_t end = 1;
    for (int t = 0; t < 50; ++t) {
        auto serial = cp.begin(PgTimestamp{});
        int n = static_cast<int>(rng() % 4);
        end += 10;
        for (int i = 0; i < n; ++i) {
            cp.addEvent(serial);
            events.push_back({serial, end});
        }
        REQUIRE(cp.commit(serial, Lsn{end}));
    }
    std::shuffle(events.begin(), events.end(), rng);
    std::vector<bool> acked(events.size(), false);
    for (std::size_t i = 0; i < events.size(); ++i) {
        REQUIRE(cp.acknowledge(events[i].txn));
        acked[i] = true;
        // The confirmed LSN must not pass any event still unacknowledged.
        for (std::size_t j = 0; j < events.size(); ++j) {
            if (!acked[j]) REQUIRE(cp.confirmed().value() < events[j].end);
        }
    }
    CHECK(cp.confirmed() == Lsn{end});
}

TEST_CASE("LSN text form round-trips", "[checkpointer][lsn]") {
    auto lsn = Lsn::parse("16/B374D848");
    REQUIRE(lsn);
    CHECK(lsn->value() == 0x16B374D848ull);
    CHECK(lsn->toString() == "16/B374D848");
    CHECK_FALSE(Lsn::parse("16B374D848"));
    CHECK_FALSE(Lsn::parse("/1"));
    CHECK_FALSE(Lsn::parse("1/"));
    CHECK_FALSE(Lsn::parse("1/xyz"));
}
