#pragma once
// When the relay sends a standby status update, i.e. confirms the acknowledged prefix to the
// slot. A crash re-sends everything the slot had not confirmed, so the confirmation follows the
// prefix closely: soon after it moves (at most one update per `min_spacing` while it keeps
// moving, so a busy stream does not send one per acknowledgement), every `idle_interval` when
// it stands still (the keepalive the server expects, status_interval_ms), and at once when the
// server asks for a reply.
//
// Pure: the caller passes the time, so tests drive it with a fake clock. One per replication
// session, used by the relay's event-loop thread only.

#include <algorithm>
#include <chrono>

#include "cdc/lsn.h"

namespace outboxd::app {

class ConfirmPacer {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using Duration = std::chrono::milliseconds;

    // The spacing while the prefix moves: at most 50 ms from a move to its confirmation.
    static constexpr Duration kMinSpacing{50};

    ConfirmPacer(Duration min_spacing, Duration idle_interval, cdc::Lsn confirmed)
        : min_spacing_(std::min(min_spacing, idle_interval)), idle_interval_(idle_interval), last_sent_(confirmed) {}

    // True when an update is due at `now`, `confirmable` being the LSN that may be confirmed.
    [[nodiscard]] bool due(TimePoint now, cdc::Lsn confirmable, bool asked) const {
        return asked || !any_sent_ || now - last_sent_at_ >= spacingFor(confirmable);
    }

    // How long the caller may wait before an update falls due (zero when it is due now).
    [[nodiscard]] Duration untilDue(TimePoint now, cdc::Lsn confirmable) const {
        if (!any_sent_) return Duration::zero();
        auto left = std::chrono::duration_cast<Duration>(last_sent_at_ + spacingFor(confirmable) - now);
        return std::max(left, Duration::zero());
    }

    // An update confirming `confirmed` went out at `now`.
    void sent(TimePoint now, cdc::Lsn confirmed) {
        last_sent_at_ = now;
        last_sent_ = confirmed;
        any_sent_ = true;
    }

    [[nodiscard]] cdc::Lsn lastSent() const { return last_sent_; }

private:
    [[nodiscard]] Duration spacingFor(cdc::Lsn confirmable) const {
        return confirmable != last_sent_ ? min_spacing_ : idle_interval_;
    }

    // Invariant: min_spacing_ <= idle_interval_.
    Duration min_spacing_;
    Duration idle_interval_;
    TimePoint last_sent_at_{};
    cdc::Lsn last_sent_;
    bool any_sent_ = false;
};

}  // namespace outboxd::app
