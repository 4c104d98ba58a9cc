#pragma once
// Typed pgoutput messages, protocol versions 1 to 4.
// https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
//
// Views (std::string_view, std::span) point into the buffer handed to decode(); they
// are valid only as long as that buffer is. RelationCache copies what it keeps.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cdc/lsn.h"

namespace outboxd::cdc::pgoutput {

struct RelationId {
    std::uint32_t value = 0;
    constexpr auto operator<=>(const RelationId&) const = default;
};

// 'B'
struct Begin {
    Lsn final_lsn;          // LSN of the commit record
    PgTimestamp commit_time;
    Xid xid;
};

// 'C'
struct Commit {
    std::uint8_t flags = 0;
    Lsn commit_lsn;
    Lsn end_lsn;            // end of the transaction: what is confirmed once it is delivered
    PgTimestamp commit_time;
};

// 'O'
struct Origin {
    Lsn commit_lsn;
    std::string_view name;
};

struct Column {
    std::uint8_t flags = 0;  // 1 = part of the key
    std::string name;
    std::uint32_t type_oid = 0;
    std::int32_t type_modifier = -1;
    [[nodiscard]] bool isKey() const { return (flags & 1) != 0; }
};

// 'R'. Owns its strings: it is kept in the RelationCache.
struct Relation {
    std::optional<Xid> xid;  // present inside a streamed transaction (v2+)
    RelationId id;
    std::string schema;      // "pg_catalog" is sent as an empty string by the server
    std::string name;
    std::uint8_t replica_identity = 0;
    std::vector<Column> columns;
};

// 'Y'
struct Type {
    std::optional<Xid> xid;
    std::uint32_t type_oid = 0;
    std::string_view schema;
    std::string_view name;
};

enum class ValueKind : std::uint8_t {
    Null,            // 'n'
    UnchangedToast,  // 'u'
    Text,            // 't'
    Binary,          // 'b'
};

struct Value {
    ValueKind kind = ValueKind::Null;
    std::string_view data;  // empty for Null and UnchangedToast
};

// TupleData
using Tuple = std::vector<Value>;

// 'I'
struct Insert {
    std::optional<Xid> xid;
    RelationId relation;
    Tuple new_tuple;
};

// 'U'
struct Update {
    std::optional<Xid> xid;
    RelationId relation;
    // 'K' (key columns only) or 'O' (whole old row), when the server sends one.
    std::optional<char> old_kind;
    Tuple old_tuple;
    Tuple new_tuple;
};

// 'D'
struct Delete {
    std::optional<Xid> xid;
    RelationId relation;
    char old_kind = 'K';  // 'K' or 'O'
    Tuple old_tuple;
};

// 'T'
struct Truncate {
    std::optional<Xid> xid;
    std::uint8_t options = 0;  // 1 = CASCADE, 2 = RESTART IDENTITY
    std::vector<RelationId> relations;
};

// 'M'
struct LogicalMessage {
    std::optional<Xid> xid;
    bool transactional = false;
    Lsn lsn;
    std::string_view prefix;
    std::span<const std::byte> content;
};

// 'S'
struct StreamStart {
    Xid xid;
    bool first_segment = false;
};

// 'E'
struct StreamStop {};

// 'c'
struct StreamCommit {
    Xid xid;
    std::uint8_t flags = 0;
    Lsn commit_lsn;
    Lsn end_lsn;
    PgTimestamp commit_time;
};

// 'A'. abort_lsn and abort_time are sent from protocol version 4 on (streaming=parallel).
struct StreamAbort {
    Xid xid;
    Xid subxid;
    std::optional<Lsn> abort_lsn;
    std::optional<PgTimestamp> abort_time;
};

// 'b'
struct BeginPrepare {
    Lsn prepare_lsn;
    Lsn end_lsn;
    PgTimestamp prepare_time;
    Xid xid;
    std::string_view gid;
};

// 'P'
struct Prepare {
    std::uint8_t flags = 0;
    Lsn prepare_lsn;
    Lsn end_lsn;
    PgTimestamp prepare_time;
    Xid xid;
    std::string_view gid;
};

// 'K'
struct CommitPrepared {
    std::uint8_t flags = 0;
    Lsn commit_lsn;
    Lsn end_lsn;
    PgTimestamp commit_time;
    Xid xid;
    std::string_view gid;
};

// 'r'
struct RollbackPrepared {
    std::uint8_t flags = 0;
    Lsn prepare_end_lsn;
    Lsn rollback_end_lsn;
    PgTimestamp prepare_time;
    PgTimestamp rollback_time;
    Xid xid;
    std::string_view gid;
};

// 'p'
struct StreamPrepare {
    std::uint8_t flags = 0;
    Lsn prepare_lsn;
    Lsn end_lsn;
    PgTimestamp prepare_time;
    Xid xid;
    std::string_view gid;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate,
                             LogicalMessage, StreamStart, StreamStop, StreamCommit, StreamAbort,
                             BeginPrepare, Prepare, CommitPrepared, RollbackPrepared, StreamPrepare>;

}  // namespace outboxd::cdc::pgoutput
