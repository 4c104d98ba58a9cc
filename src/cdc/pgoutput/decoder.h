#pragma once
// Pure pgoutput decoder: bytes in, typed message out. No I/O, no libpq.
// https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>

#include "cdc/pgoutput/messages.h"

namespace outboxd::cdc::pgoutput {

enum class DecodeErrorKind {
    Empty,            // zero-length message
    UnknownMessage,   // first byte is not a known message type
    Truncated,        // a read ran past the end of the message
    TrailingBytes,    // bytes left over after a complete message
    InvalidValue,     // a field holds a value the protocol does not allow (unknown tuple kind, ...)
    UnsupportedVersion,  // the message needs a protocol version the stream was not started with
};

[[nodiscard]] std::string_view toString(DecodeErrorKind kind);

struct DecodeError {
    DecodeErrorKind kind;
    std::size_t offset = 0;  // byte offset in the message where decoding stopped
    char message_type = 0;   // first byte of the message, 0 when empty
    std::string detail;      // human-readable, names the field
    Lsn lsn;                 // the XLogData's LSN, as passed in DecodeContext
};

// What the decoder must know about the stream that it cannot see in one message.
struct DecodeContext {
    int proto_version = 1;
    // True between Stream Start and Stream Stop: data messages then carry a leading xid.
    bool in_stream = false;
    Lsn lsn;  // LSN of the XLogData that carried the message, copied into errors
    // Last so that {proto_version, in_stream, lsn} aggregate initialisation still works.
    // True when the stream was started with streaming 'parallel' (needs proto_version >= 4):
    // only then does Stream Abort carry abort_lsn and abort_time. With proto_version 4 and
    // streaming 'on' the server omits them.
    bool parallel_streaming = false;
};

// Decodes one pgoutput message (the data of one XLogData).
[[nodiscard]] std::expected<Message, DecodeError> decode(std::span<const std::byte> data,
                                                         const DecodeContext& ctx);

}  // namespace outboxd::cdc::pgoutput
