#include "cdc/server_version.h"

#include <algorithm>

#include <fmt/format.h>

namespace outboxd::cdc {

int serverProtocol(int server_version) {
    if (server_version >= 160000) return 4;
    if (server_version >= 150000) return 3;
    if (server_version >= 140000) return 2;
    return 1;
}

int sharedProtocol(int server_version, int decoder_max) {
    return std::max(1, std::min(serverProtocol(server_version), decoder_max));
}

bool sendsMessages(int server_version) { return server_version >= 140000; }

bool hasFailoverSlots(int server_version) { return server_version >= 170000; }

std::string majorVersionName(int server_version) {
    if (server_version >= 100000) return std::to_string(server_version / 10000);
    return fmt::format("{}.{}", server_version / 10000, server_version / 100 % 100);
}

std::string slotStateColumns(int server_version) {
    return fmt::format(
        "{}, {}, {}, {}", server_version >= 130000 ? "wal_status" : "NULL::text",
        server_version >= 160000 ? "conflicting" : "NULL::boolean",
        server_version >= 170000 ? "invalidation_reason" : "NULL::text",
        server_version >= 170000 ? "to_char(inactive_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                                 : "NULL::text");
}

bool isInvalidated(const SlotInvalidation& s) {
    return s.wal_status == "lost" || s.conflicting.value_or(false) ||
           (s.invalidation_reason.has_value() && !s.invalidation_reason->empty());
}

std::string invalidationMessage(std::string_view slot, const SlotInvalidation& s) {
    const std::string reason = s.invalidation_reason.value_or("");
    std::string facts;
    auto fact = [&facts](const std::string& f) { facts += (facts.empty() ? "" : ", ") + f; };
    if (!s.wal_status.empty()) fact("wal_status = " + s.wal_status);
    if (!reason.empty()) fact("invalidation_reason = " + reason);
    if (reason.empty() && s.conflicting.value_or(false)) fact("conflicting = true");
    const std::string head = fmt::format("replication slot '{}' is invalidated ({})", slot, facts);
    const std::string drop = fmt::format(
        "Drop it (SELECT pg_drop_replication_slot('{}')), restart outboxd to create a new one, and reconcile "
        "consumers from the outbox table",
        slot);
    if (reason == "idle_timeout") {
        return fmt::format(
            "{}: it was inactive{} for longer than idle_replication_slot_timeout, so PostgreSQL released the WAL it "
            "held. {}; keep outboxd running, or raise idle_replication_slot_timeout (0 disables it) above its "
            "longest planned stop",
            head, s.inactive_since ? " since " + *s.inactive_since : "", drop);
    }
    if (reason == "rows_removed" || reason == "wal_level_insufficient" ||
        (reason.empty() && s.conflicting.value_or(false))) {
        return fmt::format(
            "{}: it conflicted with recovery on a standby ({}). {}; on the standby set hot_standby_feedback = on "
            "with a physical slot to the primary (primary_slot_name), and keep wal_level = logical on the primary",
            head,
            reason == "wal_level_insufficient" ? "the primary's wal_level was lowered below logical"
            : reason == "rows_removed"         ? "the primary removed catalog rows the slot still needed"
                                               : "catalog rows it needed were removed, or wal_level was lowered",
            drop);
    }
    if (reason.empty() || reason == "wal_removed") {
        return fmt::format(
            "{}: PostgreSQL removed WAL it still needed, so events committed since its confirmed LSN cannot be "
            "read. {}; raise max_slot_wal_keep_size to avoid this",
            head, drop);
    }
    return fmt::format("{}. {}", head, drop);
}

}  // namespace outboxd::cdc
