#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

#include "app/confirm_pacer.h"

using outboxd::app::ConfirmPacer;
using outboxd::cdc::Lsn;
using namespace std::chrono_literals;
using TimePoint = ConfirmPacer::TimePoint;

namespace {

// The relay's loop against a fake clock: it wakes when an acknowledgement arrives (the sink's
// event fd) or when the pacer says an update falls due (the poll timeout, capped at 100 ms as
// in the relay), and sends an update whenever one is due. `confirmableAt` is the acknowledged
// prefix at a time. Returns the times updates were sent and the LSN each confirmed.
struct Update {
    std::chrono::milliseconds at;
    Lsn lsn;
};
template <typename F>
std::vector<Update> runLoop(ConfirmPacer& pacer, std::chrono::milliseconds ack_every, std::chrono::milliseconds until,
                            F confirmableAt) {
    std::vector<Update> updates;
    const TimePoint t0{1h};
    auto now = 0ms;
    while (now < until) {
        const Lsn confirmable = confirmableAt(now);
        if (pacer.due(t0 + now, confirmable, false)) {
            pacer.sent(t0 + now, confirmable);
            updates.push_back({now, confirmable});
        }
        const auto timeout = std::min(pacer.untilDue(t0 + now, confirmableAt(now)), std::chrono::milliseconds(100));
        auto next = now + timeout;
        if (ack_every > 0ms) next = std::min(next, (now / ack_every + 1) * ack_every);
        now = std::max(next, now + 1ms);
    }
    return updates;
}

}  // namespace

TEST_CASE("a moving prefix is confirmed within 50 ms of each move, at most once per 50 ms", "[confirm_pacer]") {
    // GIVEN acknowledgements every millisecond (1,000 events/s), each moving the prefix
    ConfirmPacer pacer(ConfirmPacer::kMinSpacing, 1000ms, Lsn{100});
    auto lsnAt = [](std::chrono::milliseconds t) { return Lsn{static_cast<std::uint64_t>(1000 + t.count())}; };

    // WHEN the relay's loop runs for 2 s
    auto updates = runLoop(pacer, 1ms, 2000ms, lsnAt);

    // THEN every move is confirmed within 50 ms (a crash re-sends at most 50 ms of acknowledged
    // events), and the updates are at least 50 ms apart (not one per acknowledgement)
    REQUIRE(updates.size() >= 2);
    CHECK(updates.front().at == 0ms);
    for (std::size_t i = 1; i < updates.size(); ++i) {
        INFO("update " << i << " at " << updates[i].at.count() << " ms");
        CHECK(updates[i].at - updates[i - 1].at <= 50ms);
        CHECK(updates[i].at - updates[i - 1].at >= 50ms);
        CHECK(updates[i].lsn == lsnAt(updates[i].at));
    }
    CHECK(updates.size() <= 2000 / 50 + 1);
}

TEST_CASE("an idle prefix is confirmed every status interval, and a move after idling at once", "[confirm_pacer]") {
    // GIVEN a prefix that stands still for 3.5 s and then moves once
    ConfirmPacer pacer(ConfirmPacer::kMinSpacing, 1000ms, Lsn{100});
    auto lsnAt = [](std::chrono::milliseconds t) { return t < 3500ms ? Lsn{500} : Lsn{600}; };

    // WHEN the loop runs (no acknowledgements wake it) for 5 s
    auto updates = runLoop(pacer, 0ms, 5000ms, lsnAt);

    // THEN idle updates go out once per second, and the move at 3.5 s is confirmed at once
    // (its update is 500 ms after the last, not at the next 1 s tick)
    std::vector<std::int64_t> at;
    for (const auto& u : updates) at.push_back(u.at.count());
    CHECK(at == std::vector<std::int64_t>{0, 1000, 2000, 3000, 3500, 4500});
    CHECK(updates[4].lsn == Lsn{600});
}

TEST_CASE("a reply the server asks for is due at once", "[confirm_pacer]") {
    ConfirmPacer pacer(ConfirmPacer::kMinSpacing, 1000ms, Lsn{100});
    const TimePoint t0{1h};
    CHECK(pacer.due(t0, Lsn{100}, false));
    CHECK(pacer.untilDue(t0, Lsn{100}) == 0ms);
    pacer.sent(t0, Lsn{100});
    CHECK(pacer.lastSent() == Lsn{100});
    CHECK_FALSE(pacer.due(t0 + 10ms, Lsn{100}, false));
    CHECK(pacer.untilDue(t0 + 10ms, Lsn{100}) == 990ms);
    CHECK(pacer.untilDue(t0 + 10ms, Lsn{200}) == 40ms);
    CHECK(pacer.due(t0 + 10ms, Lsn{100}, true));
}

TEST_CASE("the spacing never exceeds the status interval", "[confirm_pacer]") {
    // status_interval_ms may be as low as 100; a spacing above it is cut to it
    ConfirmPacer pacer(200ms, 100ms, Lsn{100});
    const TimePoint t0{1h};
    pacer.sent(t0, Lsn{100});
    CHECK(pacer.untilDue(t0, Lsn{200}) == 100ms);
    CHECK(pacer.due(t0 + 100ms, Lsn{200}, false));
}
