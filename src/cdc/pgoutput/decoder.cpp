#include "cdc/pgoutput/decoder.h"

#include <bit>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace outboxd::cdc::pgoutput {

namespace {

// Names the field being read, for error details; formatted only when a read fails, so the
// success path does not allocate. "new_tuple[3].length" is {"new_tuple", 3, "length"}.
struct Field {
    Field(const char* n) : name(n) {}  // NOLINT(google-explicit-constructor)
    Field(std::string_view g, std::string_view n) : group(g), name(n) {}
    Field(std::string_view g, std::size_t i, std::string_view n) : group(g), index(i), name(n), indexed(true) {}

    std::string_view group;
    std::size_t index = 0;
    std::string_view name;
    bool indexed = false;
};

}  // namespace
}  // namespace outboxd::cdc::pgoutput

template <>
struct fmt::formatter<outboxd::cdc::pgoutput::Field> : fmt::formatter<std::string_view> {
    auto format(const outboxd::cdc::pgoutput::Field& f, fmt::format_context& ctx) const {
        if (f.indexed) {
            return fmt::format_to(ctx.out(), "{}[{}].{}", f.group, f.index, f.name);
        }
        if (!f.group.empty()) {
            return fmt::format_to(ctx.out(), "{}.{}", f.group, f.name);
        }
        return fmt::format_to(ctx.out(), "{}", f.name);
    }
};

namespace outboxd::cdc::pgoutput {
namespace {

// Big-endian reader over one pgoutput message. Never reads past the end: every read checks
// the bytes remaining first and, on failure, records the first error (with the offset where
// the failed field starts) and returns false. After a failure all further reads fail too.
class Reader {
public:
    Reader(std::span<const std::byte> data, const DecodeContext& ctx)
        : data_(data), ctx_(ctx), type_(data.empty() ? 0 : static_cast<char>(data[0])) {}

    [[nodiscard]] std::size_t offset() const { return pos_; }
    [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }
    [[nodiscard]] const DecodeContext& context() const { return ctx_; }
    [[nodiscard]] bool failed() const { return error_.has_value(); }
    [[nodiscard]] DecodeError takeError() { return std::move(*error_); }

    bool fail(DecodeErrorKind kind, std::size_t at, std::string detail) {
        if (!error_) {
            error_ = DecodeError{kind, at, type_, std::move(detail), ctx_.lsn};
        }
        return false;
    }

    bool skip(std::size_t n) {
        pos_ += n;
        return true;
    }

    bool u8(std::uint8_t& out, Field field) {
        std::uint64_t v = 0;
        if (!uintN(1, v, field)) return false;
        out = static_cast<std::uint8_t>(v);
        return true;
    }
    bool u16(std::uint16_t& out, Field field) {
        std::uint64_t v = 0;
        if (!uintN(2, v, field)) return false;
        out = static_cast<std::uint16_t>(v);
        return true;
    }
    bool u32(std::uint32_t& out, Field field) {
        std::uint64_t v = 0;
        if (!uintN(4, v, field)) return false;
        out = static_cast<std::uint32_t>(v);
        return true;
    }
    bool i32(std::int32_t& out, Field field) {
        std::uint32_t v = 0;
        if (!u32(v, field)) return false;
        out = std::bit_cast<std::int32_t>(v);
        return true;
    }
    bool u64(std::uint64_t& out, Field field) { return uintN(8, out, field); }

    bool byteChar(char& out, Field field) {
        std::uint8_t v = 0;
        if (!u8(v, field)) return false;
        out = static_cast<char>(v);
        return true;
    }
    bool lsn(Lsn& out, Field field) {
        std::uint64_t v = 0;
        if (!u64(v, field)) return false;
        out = Lsn{v};
        return true;
    }
    bool timestamp(PgTimestamp& out, Field field) {
        std::uint64_t v = 0;
        if (!u64(v, field)) return false;
        out = PgTimestamp{std::bit_cast<std::int64_t>(v)};
        return true;
    }
    bool xid(Xid& out, Field field) { return u32(out.value, field); }

    // Int32 xid present only inside a streamed transaction (protocol version 2 and later).
    bool streamXid(std::optional<Xid>& out) {
        if (!ctx_.in_stream || ctx_.proto_version < 2) return true;
        Xid x;
        if (!xid(x, "xid")) return false;
        out = x;
        return true;
    }

    // NUL-terminated string; the view excludes the terminator.
    bool cstring(std::string_view& out, Field field) {
        if (failed()) return false;
        const auto* begin = reinterpret_cast<const char*>(data_.data()) + pos_;
        const void* nul = remaining() == 0 ? nullptr : std::memchr(begin, 0, remaining());
        if (nul == nullptr) {
            return fail(DecodeErrorKind::Truncated, pos_,
                        fmt::format("{}: string has no terminating NUL in the {} bytes remaining", field,
                                    remaining()));
        }
        auto len = static_cast<std::size_t>(static_cast<const char*>(nul) - begin);
        out = std::string_view(begin, len);
        pos_ += len + 1;
        return true;
    }
    bool cstring(std::string& out, Field field) {
        std::string_view v;
        if (!cstring(v, field)) return false;
        out.assign(v);
        return true;
    }

    bool bytes(std::size_t n, std::span<const std::byte>& out, Field field) {
        if (!need(n, field)) return false;
        out = data_.subspan(pos_, n);
        pos_ += n;
        return true;
    }

    // Checks a count read from the message against the bytes left, before anything is reserved
    // for it: each element needs at least min_each bytes.
    bool countFits(std::uint64_t count, std::size_t min_each, std::size_t count_at, Field field) {
        if (failed()) return false;
        if (count * min_each > remaining()) {
            return fail(DecodeErrorKind::Truncated, count_at,
                        fmt::format("{}: count {} needs at least {} bytes, {} remain", field, count,
                                    count * min_each, remaining()));
        }
        return true;
    }

    bool requireVersion(int version, std::string_view what) {
        if (ctx_.proto_version < version) {
            return fail(DecodeErrorKind::UnsupportedVersion, 0,
                        fmt::format("{} needs protocol version {} or later, stream uses {}", what, version,
                                    ctx_.proto_version));
        }
        return true;
    }

private:
    bool need(std::size_t n, Field field) {
        if (failed()) return false;
        if (remaining() < n) {
            return fail(DecodeErrorKind::Truncated, pos_,
                        fmt::format("{}: need {} bytes, {} remain", field, n, remaining()));
        }
        return true;
    }

    bool uintN(std::size_t n, std::uint64_t& out, Field field) {
        if (!need(n, field)) return false;
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v = (v << 8) | std::to_integer<std::uint64_t>(data_[pos_ + i]);
        }
        pos_ += n;
        out = v;
        return true;
    }

    std::span<const std::byte> data_;
    const DecodeContext& ctx_;
    char type_;
    std::size_t pos_ = 0;
    std::optional<DecodeError> error_;
};

// TupleData: Int16 column count, then per column a kind byte ('n', 'u', 't', 'b') and, for
// 't' and 'b', an Int32 length and that many bytes.
bool readTuple(Reader& r, Tuple& out, std::string_view which) {
    const auto count_at = r.offset();
    std::uint16_t ncols = 0;
    if (!r.u16(ncols, Field{which, "column_count"})) return false;
    if (!r.countFits(ncols, 1, count_at, Field{which, "column_count"})) return false;
    out.clear();
    out.reserve(ncols);
    for (std::uint16_t i = 0; i < ncols; ++i) {
        const auto kind_at = r.offset();
        char kind = 0;
        if (!r.byteChar(kind, Field{which, i, "kind"})) return false;
        Value value;
        switch (kind) {
            case 'n': value.kind = ValueKind::Null; break;
            case 'u': value.kind = ValueKind::UnchangedToast; break;
            case 't':
            case 'b': {
                value.kind = kind == 't' ? ValueKind::Text : ValueKind::Binary;
                const auto len_at = r.offset();
                std::int32_t len = 0;
                if (!r.i32(len, Field{which, i, "length"})) return false;
                if (len < 0) {
                    return r.fail(DecodeErrorKind::InvalidValue, len_at,
                                  fmt::format("{}[{}].length: negative length {}", which, i, len));
                }
                std::span<const std::byte> bytes;
                if (!r.bytes(static_cast<std::size_t>(len), bytes, Field{which, i, "data"})) {
                    return false;
                }
                value.data = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                break;
            }
            default:
                return r.fail(DecodeErrorKind::InvalidValue, kind_at,
                              fmt::format("{}[{}].kind: unknown tuple value kind 0x{:02x}", which, i,
                                          static_cast<unsigned char>(kind)));
        }
        out.push_back(value);
    }
    return true;
}

bool readRelationId(Reader& r, RelationId& out) { return r.u32(out.value, "relation_id"); }

bool expectMarker(Reader& r, char expected, Field field) {
    const auto at = r.offset();
    char c = 0;
    if (!r.byteChar(c, field)) return false;
    if (c != expected) {
        return r.fail(DecodeErrorKind::InvalidValue, at,
                      fmt::format("{}: expected '{}', got 0x{:02x}", field, expected, static_cast<unsigned char>(c)));
    }
    return true;
}

bool read(Reader& r, Begin& m) {
    return r.lsn(m.final_lsn, "final_lsn") && r.timestamp(m.commit_time, "commit_time") && r.xid(m.xid, "xid");
}

bool read(Reader& r, Commit& m) {
    return r.u8(m.flags, "flags") && r.lsn(m.commit_lsn, "commit_lsn") && r.lsn(m.end_lsn, "end_lsn") &&
           r.timestamp(m.commit_time, "commit_time");
}

bool read(Reader& r, Origin& m) { return r.lsn(m.commit_lsn, "commit_lsn") && r.cstring(m.name, "name"); }

bool read(Reader& r, Relation& m) {
    if (!r.streamXid(m.xid) || !readRelationId(r, m.id) || !r.cstring(m.schema, "namespace") ||
        !r.cstring(m.name, "relation_name") || !r.u8(m.replica_identity, "replica_identity")) {
        return false;
    }
    const auto count_at = r.offset();
    std::uint16_t ncols = 0;
    if (!r.u16(ncols, "column_count")) return false;
    // flags (1) + name (at least the NUL) + type oid (4) + type modifier (4)
    constexpr std::size_t kMinColumnBytes = 10;
    if (!r.countFits(ncols, kMinColumnBytes, count_at, "column_count")) return false;
    m.columns.reserve(ncols);
    for (std::uint16_t i = 0; i < ncols; ++i) {
        Column c;
        if (!r.u8(c.flags, Field{"columns", i, "flags"}) ||
            !r.cstring(c.name, Field{"columns", i, "name"}) ||
            !r.u32(c.type_oid, Field{"columns", i, "type_oid"}) ||
            !r.i32(c.type_modifier, Field{"columns", i, "type_modifier"})) {
            return false;
        }
        m.columns.push_back(std::move(c));
    }
    return true;
}

bool read(Reader& r, Type& m) {
    return r.streamXid(m.xid) && r.u32(m.type_oid, "type_oid") && r.cstring(m.schema, "namespace") &&
           r.cstring(m.name, "type_name");
}

bool read(Reader& r, Insert& m) {
    return r.streamXid(m.xid) && readRelationId(r, m.relation) && expectMarker(r, 'N', "new_tuple_marker") &&
           readTuple(r, m.new_tuple, "new_tuple");
}

bool read(Reader& r, Update& m) {
    if (!r.streamXid(m.xid) || !readRelationId(r, m.relation)) return false;
    const auto at = r.offset();
    char marker = 0;
    if (!r.byteChar(marker, "tuple_marker")) return false;
    if (marker == 'K' || marker == 'O') {
        m.old_kind = marker;
        if (!readTuple(r, m.old_tuple, "old_tuple")) return false;
        return expectMarker(r, 'N', "new_tuple_marker") && readTuple(r, m.new_tuple, "new_tuple");
    }
    if (marker != 'N') {
        return r.fail(DecodeErrorKind::InvalidValue, at,
                      fmt::format("tuple_marker: expected 'K', 'O' or 'N', got 0x{:02x}",
                                  static_cast<unsigned char>(marker)));
    }
    return readTuple(r, m.new_tuple, "new_tuple");
}

bool read(Reader& r, Delete& m) {
    if (!r.streamXid(m.xid) || !readRelationId(r, m.relation)) return false;
    const auto at = r.offset();
    if (!r.byteChar(m.old_kind, "old_tuple_marker")) return false;
    if (m.old_kind != 'K' && m.old_kind != 'O') {
        return r.fail(DecodeErrorKind::InvalidValue, at,
                      fmt::format("old_tuple_marker: expected 'K' or 'O', got 0x{:02x}",
                                  static_cast<unsigned char>(m.old_kind)));
    }
    return readTuple(r, m.old_tuple, "old_tuple");
}

bool read(Reader& r, Truncate& m) {
    if (!r.streamXid(m.xid)) return false;
    const auto count_at = r.offset();
    std::uint32_t nrels = 0;
    if (!r.u32(nrels, "relation_count") || !r.u8(m.options, "options")) return false;
    if (!r.countFits(nrels, 4, count_at, "relation_count")) return false;
    m.relations.reserve(nrels);
    for (std::uint32_t i = 0; i < nrels; ++i) {
        RelationId id;
        if (!r.u32(id.value, Field{"relation_ids", i, "id"})) return false;
        m.relations.push_back(id);
    }
    return true;
}

bool read(Reader& r, LogicalMessage& m) {
    std::uint8_t flags = 0;
    if (!r.streamXid(m.xid) || !r.u8(flags, "flags") || !r.lsn(m.lsn, "lsn") || !r.cstring(m.prefix, "prefix")) {
        return false;
    }
    m.transactional = (flags & 1) != 0;
    const auto len_at = r.offset();
    std::int32_t len = 0;
    if (!r.i32(len, "content_length")) return false;
    if (len < 0) {
        return r.fail(DecodeErrorKind::InvalidValue, len_at, fmt::format("content_length: negative length {}", len));
    }
    return r.bytes(static_cast<std::size_t>(len), m.content, "content");
}

bool read(Reader& r, StreamStart& m) {
    std::uint8_t first = 0;
    if (!r.requireVersion(2, "Stream Start") || !r.xid(m.xid, "xid") || !r.u8(first, "first_segment")) return false;
    m.first_segment = first == 1;
    return true;
}

bool read(Reader& r, StreamStop&) { return r.requireVersion(2, "Stream Stop"); }

bool read(Reader& r, StreamCommit& m) {
    return r.requireVersion(2, "Stream Commit") && r.xid(m.xid, "xid") && r.u8(m.flags, "flags") &&
           r.lsn(m.commit_lsn, "commit_lsn") && r.lsn(m.end_lsn, "end_lsn") &&
           r.timestamp(m.commit_time, "commit_time");
}

bool read(Reader& r, StreamAbort& m) {
    if (!r.requireVersion(2, "Stream Abort") || !r.xid(m.xid, "xid") || !r.xid(m.subxid, "subxid")) return false;
    if (r.context().proto_version >= 4 && r.context().parallel_streaming) {
        Lsn lsn;
        PgTimestamp time;
        if (!r.lsn(lsn, "abort_lsn") || !r.timestamp(time, "abort_time")) return false;
        m.abort_lsn = lsn;
        m.abort_time = time;
    }
    return true;
}

bool read(Reader& r, BeginPrepare& m) {
    return r.requireVersion(3, "Begin Prepare") && r.lsn(m.prepare_lsn, "prepare_lsn") &&
           r.lsn(m.end_lsn, "end_lsn") && r.timestamp(m.prepare_time, "prepare_time") && r.xid(m.xid, "xid") &&
           r.cstring(m.gid, "gid");
}

bool read(Reader& r, Prepare& m) {
    return r.requireVersion(3, "Prepare") && r.u8(m.flags, "flags") && r.lsn(m.prepare_lsn, "prepare_lsn") &&
           r.lsn(m.end_lsn, "end_lsn") && r.timestamp(m.prepare_time, "prepare_time") && r.xid(m.xid, "xid") &&
           r.cstring(m.gid, "gid");
}

bool read(Reader& r, CommitPrepared& m) {
    return r.requireVersion(3, "Commit Prepared") && r.u8(m.flags, "flags") &&
           r.lsn(m.commit_lsn, "commit_lsn") && r.lsn(m.end_lsn, "end_lsn") &&
           r.timestamp(m.commit_time, "commit_time") && r.xid(m.xid, "xid") && r.cstring(m.gid, "gid");
}

bool read(Reader& r, RollbackPrepared& m) {
    return r.requireVersion(3, "Rollback Prepared") && r.u8(m.flags, "flags") &&
           r.lsn(m.prepare_end_lsn, "prepare_end_lsn") && r.lsn(m.rollback_end_lsn, "rollback_end_lsn") &&
           r.timestamp(m.prepare_time, "prepare_time") && r.timestamp(m.rollback_time, "rollback_time") &&
           r.xid(m.xid, "xid") && r.cstring(m.gid, "gid");
}

bool read(Reader& r, StreamPrepare& m) {
    return r.requireVersion(3, "Stream Prepare") && r.u8(m.flags, "flags") &&
           r.lsn(m.prepare_lsn, "prepare_lsn") && r.lsn(m.end_lsn, "end_lsn") &&
           r.timestamp(m.prepare_time, "prepare_time") && r.xid(m.xid, "xid") && r.cstring(m.gid, "gid");
}

template <typename T>
std::expected<Message, DecodeError> decodeAs(Reader& r) {
    T message{};
    if (!read(r, message)) return std::unexpected(r.takeError());
    if (r.remaining() != 0) {
        r.fail(DecodeErrorKind::TrailingBytes, r.offset(),
               fmt::format("{} bytes left after a complete message", r.remaining()));
        return std::unexpected(r.takeError());
    }
    return Message{std::move(message)};
}

}  // namespace

std::string_view toString(DecodeErrorKind kind) {
    switch (kind) {
        case DecodeErrorKind::Empty: return "empty message";
        case DecodeErrorKind::UnknownMessage: return "unknown message type";
        case DecodeErrorKind::Truncated: return "truncated message";
        case DecodeErrorKind::TrailingBytes: return "trailing bytes after message";
        case DecodeErrorKind::InvalidValue: return "invalid field value";
        case DecodeErrorKind::UnsupportedVersion: return "message not allowed in this protocol version";
    }
    return "unknown decode error";
}

// Logical Replication Message Formats (PostgreSQL docs, "Logical Replication Message
// Formats"), protocol versions 1 to 4. One call decodes the data of one XLogData.
std::expected<Message, DecodeError> decode(std::span<const std::byte> data, const DecodeContext& ctx) {
    if (data.empty()) {
        return std::unexpected(DecodeError{DecodeErrorKind::Empty, 0, 0, "message has no type byte", ctx.lsn});
    }
    Reader r(data, ctx);
    r.skip(1);
    switch (static_cast<char>(data[0])) {
        case 'B': return decodeAs<Begin>(r);
        case 'C': return decodeAs<Commit>(r);
        case 'O': return decodeAs<Origin>(r);
        case 'R': return decodeAs<Relation>(r);
        case 'Y': return decodeAs<Type>(r);
        case 'I': return decodeAs<Insert>(r);
        case 'U': return decodeAs<Update>(r);
        case 'D': return decodeAs<Delete>(r);
        case 'T': return decodeAs<Truncate>(r);
        case 'M': return decodeAs<LogicalMessage>(r);
        case 'S': return decodeAs<StreamStart>(r);
        case 'E': return decodeAs<StreamStop>(r);
        case 'c': return decodeAs<StreamCommit>(r);
        case 'A': return decodeAs<StreamAbort>(r);
        case 'b': return decodeAs<BeginPrepare>(r);
        case 'P': return decodeAs<Prepare>(r);
        case 'K': return decodeAs<CommitPrepared>(r);
        case 'r': return decodeAs<RollbackPrepared>(r);
        case 'p': return decodeAs<StreamPrepare>(r);
        default: break;
    }
    return std::unexpected(DecodeError{
        DecodeErrorKind::UnknownMessage, 0, static_cast<char>(data[0]),
        fmt::format("message_type: unknown type byte 0x{:02x}", std::to_integer<unsigned>(data[0])), ctx.lsn});
}

}  // namespace outboxd::cdc::pgoutput
