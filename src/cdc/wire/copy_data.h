#pragma once
// The streaming replication sub-protocol carried in CopyData messages.
// https://www.postgresql.org/docs/current/protocol-replication.html (START_REPLICATION)
// Pure: parses and builds byte buffers, never touches a socket.

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <variant>

#include "cdc/lsn.h"

namespace outboxd::cdc::wire {

// 'w': XLogData. data views the input buffer.
struct XLogData {
    Lsn wal_start;
    Lsn wal_end;
    PgTimestamp send_time;
    std::span<const std::byte> data;
};

// 'k': Primary keepalive message.
struct PrimaryKeepalive {
    Lsn wal_end;
    PgTimestamp send_time;
    bool reply_requested = false;
};

using ServerMessage = std::variant<XLogData, PrimaryKeepalive>;

enum class WireErrorKind {
    Empty,
    UnknownKind,
    Truncated,
    TrailingBytes,
};

struct WireError {
    WireErrorKind kind;
    char message_kind = 0;
    std::size_t size = 0;  // size of the frame received
    std::string detail;
};

[[nodiscard]] std::expected<ServerMessage, WireError> parseServerMessage(std::span<const std::byte> frame);

// 'r': Standby status update, 34 bytes.
struct StandbyStatusUpdate {
    Lsn written;
    Lsn flushed;
    Lsn applied;
    PgTimestamp client_time;
    bool reply_requested = false;
};

inline constexpr std::size_t kStandbyStatusUpdateSize = 34;

[[nodiscard]] std::array<std::byte, kStandbyStatusUpdateSize> encode(const StandbyStatusUpdate& update);

}  // namespace outboxd::cdc::wire
