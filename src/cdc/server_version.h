#pragma once
// What each PostgreSQL version offers outboxd, in one place: the pgoutput protocol it speaks,
// whether it sends logical decoding messages, which pg_replication_slots columns it has, and
// what an invalidated slot's reason means for the operator. Pure (no libpq): the replication
// stream and the slot monitor ask it; the unit tests cover every version from 10 to 18.

#include <optional>
#include <string>
#include <string_view>

namespace outboxd::cdc {

// The highest pgoutput protocol a server speaks ("Logical Streaming Replication Parameters",
// proto_version): 1 from PostgreSQL 10, 2 (streaming) from 14, 3 (two-phase) from 15, 4
// (parallel streaming) from 16. server_version is PQserverVersion's number, e.g. 160006.
[[nodiscard]] int serverProtocol(int server_version);

// The protocol to ask for: the highest one both the server and the decoder speak.
[[nodiscard]] int sharedProtocol(int server_version, int decoder_max);

// pgoutput sends pg_logical_emit_message() messages when asked (option messages, 14+).
[[nodiscard]] bool sendsMessages(int server_version);

// Failover slots (CREATE_REPLICATION_SLOT ... (FAILOVER), pg_replication_slots.failover): 17+.
[[nodiscard]] bool hasFailoverSlots(int server_version);

// The major version for messages: 170002 -> 17, 90624 -> 9.6.
[[nodiscard]] std::string majorVersionName(int server_version);

// The pg_replication_slots columns outboxd reads beyond the PostgreSQL 10 ones, as SELECT list
// items in a fixed order, NULL where the server lacks the column, so that the same column
// indexes hold on every version: wal_status (13+), conflicting (16+), invalidation_reason and
// inactive_since (17+, inactive_since as an ISO timestamp in UTC).
[[nodiscard]] std::string slotStateColumns(int server_version);
inline constexpr int kSlotStateColumnCount = 4;

// What PostgreSQL said about an invalidated slot, as read from pg_replication_slots.
struct SlotInvalidation {
    std::string wal_status;                          // "lost" once invalidated (13+)
    std::optional<bool> conflicting;                 // 16+: invalidated by a conflict with recovery
    std::optional<std::string> invalidation_reason;  // 17+: wal_removed, rows_removed, ...
    std::optional<std::string> inactive_since;       // 17+: when the slot was last released
};

// True when the slot can no longer be streamed from.
[[nodiscard]] bool isInvalidated(const SlotInvalidation& s);

// Why the slot was invalidated and what to do about it, in the words of the newest column the
// server has (invalidation_reason, then conflicting, then wal_status). `slot` is the slot's name.
[[nodiscard]] std::string invalidationMessage(std::string_view slot, const SlotInvalidation& s);

}  // namespace outboxd::cdc
