#pragma once
// Pure decisions about the source that replication_stream.cpp and the relay act on, kept apart
// from libpq so that unit tests reach them: the units of a PostgreSQL duration setting, which
// connection failures are definite, the record outboxd keeps on its publication, and the
// silence detector of a replication session. No I/O; no state shared between threads.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cdc/lsn.h"
#include "common/error.h"

namespace outboxd::cdc {

// A time setting as SHOW prints it ("60s", "500ms", "1min", "1h", "2d", "0"): PostgreSQL's
// time units (docs: "Parameter Names and Values", units us, ms, s, min, h, d). A bare number is
// in the setting's base unit, milliseconds for wal_sender_timeout. nullopt when unparseable.
[[nodiscard]] std::optional<std::chrono::milliseconds> parseDurationSetting(std::string_view text);

// What the connection failure libpq reported (PQerrorMessage after PQconnectdbParams) means:
// a definite kind with the fix appended for the refusals that no retry can heal (no REPLICATION
// attribute, unknown database, a bad option value), SourceConnect otherwise.
struct ConnectFailure {
    ErrorKind kind = ErrorKind::SourceConnect;
    std::string hint;  // what to do; empty for transient failures
};
[[nodiscard]] ConnectFailure classifyConnectFailure(std::string_view libpq_message);

// The record outboxd keeps in the comment of its publication: one line per slot that streamed
// from it, "outboxd slot=<name> confirmed_lsn=<X/Y>". It tells a first install (no record for
// the slot) from a lost slot (a record, and no slot). Other lines of the comment are kept.
struct SlotRecord {
    std::string slot;
    Lsn confirmed;
};
[[nodiscard]] std::optional<SlotRecord> findSlotRecord(std::string_view comment, std::string_view slot);
// The comment with the line for `record.slot` replaced or appended.
[[nodiscard]] std::string withSlotRecord(std::string_view comment, const SlotRecord& record);
// The comment without the line for `slot`; empty when nothing else is left.
[[nodiscard]] std::string withoutSlotRecord(std::string_view comment, std::string_view slot);

// After a reconnect (a DSN naming several hosts finds the primary anew, e.g. a promoted standby):
// the same cluster has the system identifier IDENTIFY_SYSTEM gave the first session (a promotion
// only starts a new timeline); another cluster that happens to hold a slot of the same name
// does not, and its positions are not this stream's. nullopt when `previous` is empty (first
// session) or equal; else the refusal's message.
[[nodiscard]] std::optional<std::string> checkSameSystem(std::string_view previous, std::string_view now);

// After a reconnect to the same cluster on a later timeline (IDENTIFY_SYSTEM's timeline grew: a
// standby was promoted), the slot there must be the one PostgreSQL 17+ synchronized from the old
// primary ("Logical Replication Failover"): pg_replication_slots.synced and .failover true, and
// its confirmed_flush_lsn not ahead of what this outboxd confirmed (a slot ahead would skip
// events outboxd never had acknowledged). A missing slot was never synchronized before the
// promotion. The message of every refusal starts with kPromotionRefusal.
inline constexpr std::string_view kPromotionRefusal = "the server outboxd reconnected to was promoted";
struct PromotedSlot {
    bool exists = false;
    std::optional<bool> synced;    // NULL before PostgreSQL 17
    std::optional<bool> failover;  // NULL before PostgreSQL 17
    Lsn confirmed_flush;           // invalid when NULL
};
// nullopt when no promotion happened (first session, or the same timeline) or the slot is the
// synchronized one; else the refusal, saying what happened and what to do.
[[nodiscard]] std::optional<std::string> checkPromotedSlot(std::string_view slot, std::uint32_t previous_timeline,
                                                           std::uint32_t timeline, const PromotedSlot& found,
                                                           Lsn confirmed_here);

// Decides when a replication session that hears nothing is dead. The walsender only pings a
// client it has not heard from, and sends nothing while it decodes a large transaction that
// publishes nothing; so before presuming it dead the session asks for a reply (a standby status
// update with reply requested), and only a server that answers no request for `limit` is dead.
// Time the session spends not reading (its producer queue is full) is not silence.
// Single-threaded; the caller passes the time.
class SilenceDetector {
public:
    using Clock = std::chrono::steady_clock;
    enum class Verdict { Quiet, AskForReply, Dead };

    // limit 0 disables the detector (wal_sender_timeout = 0).
    SilenceDetector(std::chrono::milliseconds limit, Clock::time_point now);

    void heard(Clock::time_point now);
    // The session did not read from the server since the last call (a full producer queue).
    void notReading(Clock::time_point now);
    // What to do now; AskForReply at most once per half limit, until something is heard.
    [[nodiscard]] Verdict check(Clock::time_point now);
    [[nodiscard]] std::chrono::milliseconds limit() const { return limit_; }

private:
    std::chrono::milliseconds limit_;
    Clock::time_point last_heard_;
    // Invariant: set only while nothing was heard since the first request of this silence.
    std::optional<Clock::time_point> first_ask_;
    Clock::time_point last_ask_{};
};

}  // namespace outboxd::cdc
