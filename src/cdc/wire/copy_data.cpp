#include "cdc/wire/copy_data.h"

#include <bit>

#include <fmt/format.h>

namespace outboxd::cdc::wire {

namespace {

constexpr std::size_t kXLogDataHeaderSize = 1 + 8 + 8 + 8;
constexpr std::size_t kPrimaryKeepaliveSize = 1 + 8 + 8 + 1;

// Callers check the frame size first; offset + 8 <= frame.size() always holds here.
std::uint64_t loadU64(std::span<const std::byte> frame, std::size_t offset) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        v = (v << 8) | std::to_integer<std::uint64_t>(frame[offset + i]);
    }
    return v;
}

void storeU64(std::span<std::byte> out, std::size_t offset, std::uint64_t v) {
    for (std::size_t i = 0; i < 8; ++i) {
        out[offset + i] = static_cast<std::byte>(v >> (8 * (7 - i)));
    }
}

WireError error(WireErrorKind kind, std::span<const std::byte> frame, std::string detail) {
    return WireError{kind, frame.empty() ? '\0' : static_cast<char>(frame[0]), frame.size(), std::move(detail)};
}

}  // namespace

// Streaming Replication Protocol, START_REPLICATION: the server's CopyData payloads.
// XLogData ('w'): Int64 WAL start, Int64 WAL end, Int64 send time, Byte(n) WAL data.
// Primary keepalive message ('k'): Int64 WAL end, Int64 send time, Byte1 reply requested.
std::expected<ServerMessage, WireError> parseServerMessage(std::span<const std::byte> frame) {
    if (frame.empty()) {
        return std::unexpected(error(WireErrorKind::Empty, frame, "CopyData payload is empty"));
    }
    switch (static_cast<char>(frame[0])) {
        case 'w': {
            if (frame.size() < kXLogDataHeaderSize) {
                return std::unexpected(error(WireErrorKind::Truncated, frame,
                                             fmt::format("XLogData header needs {} bytes, frame has {}",
                                                         kXLogDataHeaderSize, frame.size())));
            }
            return XLogData{
                .wal_start = Lsn{loadU64(frame, 1)},
                .wal_end = Lsn{loadU64(frame, 9)},
                .send_time = PgTimestamp{std::bit_cast<std::int64_t>(loadU64(frame, 17))},
                .data = frame.subspan(kXLogDataHeaderSize),
            };
        }
        case 'k': {
            if (frame.size() < kPrimaryKeepaliveSize) {
                return std::unexpected(error(WireErrorKind::Truncated, frame,
                                             fmt::format("primary keepalive needs {} bytes, frame has {}",
                                                         kPrimaryKeepaliveSize, frame.size())));
            }
            if (frame.size() > kPrimaryKeepaliveSize) {
                return std::unexpected(error(WireErrorKind::TrailingBytes, frame,
                                             fmt::format("primary keepalive is {} bytes, frame has {}",
                                                         kPrimaryKeepaliveSize, frame.size())));
            }
            return PrimaryKeepalive{
                .wal_end = Lsn{loadU64(frame, 1)},
                .send_time = PgTimestamp{std::bit_cast<std::int64_t>(loadU64(frame, 9))},
                .reply_requested = frame[17] != std::byte{0},
            };
        }
        default:
            return std::unexpected(error(WireErrorKind::UnknownKind, frame,
                                         fmt::format("unknown CopyData message kind 0x{:02x}",
                                                     std::to_integer<unsigned>(frame[0]))));
    }
}

// Streaming Replication Protocol, START_REPLICATION: Standby status update ('r'), sent by
// the client: Int64 written, Int64 flushed, Int64 applied (each the last WAL byte + 1),
// Int64 client time, Byte1 reply requested.
std::array<std::byte, kStandbyStatusUpdateSize> encode(const StandbyStatusUpdate& update) {
    std::array<std::byte, kStandbyStatusUpdateSize> out{};
    out[0] = static_cast<std::byte>('r');
    storeU64(out, 1, update.written.value());
    storeU64(out, 9, update.flushed.value());
    storeU64(out, 17, update.applied.value());
    storeU64(out, 25, std::bit_cast<std::uint64_t>(update.client_time.micros));
    out[33] = update.reply_requested ? std::byte{1} : std::byte{0};
    return out;
}

}  // namespace outboxd::cdc::wire
