#pragma once
// Turns an outbox row into the Kafka record outboxd publishes: topic, key, headers and the
// serialized outboxd.v1.Event value.
//
// Owns, for each outbox relation seen, where the configured columns sit in its rows (resolved
// by name whenever a Relation message arrives, so ALTER TABLE does not confuse it). Pure: no
// I/O. Used by the relay's event-loop thread only.

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cdc/lsn.h"
#include "cdc/pgoutput/messages.h"
#include "common/error.h"
#include "config/config.h"
#include "outbox/json_text.h"
#include "outbox/message_content.h"

namespace outboxd::v1 {
class Event;
}
namespace outboxd::common {
class Regex;
}

namespace outboxd::outbox {

namespace payload {
class TypedPayloads;
}

// Where the row came from, from the transaction's Begin and the XLogData of the change.
struct ChangeContext {
    cdc::Lsn lsn;
    cdc::Lsn commit_lsn;
    cdc::Xid xid;
    cdc::PgTimestamp commit_time;
};

struct OutboxEvent {
    std::string topic;
    std::string key;
    bool key_is_null = false;
    std::string value;  // serialized outboxd.v1.Event, or the payload alone (routing.value: payload)
    bool value_is_null = false;  // a null record value (routing.value: payload, NULL payload)
    std::string id;
    std::string type;
    std::string aggregate_type;
    std::string content_type;  // the content-type header; left out of the record when empty
    // Further headers (the dead-letter record's outboxd.error, outboxd.lsn, outboxd.table).
    std::vector<std::pair<std::string, std::string>> extra_headers;
    // routing.additional_fields with placement header, in order, their values already encoded
    // (routing.header_encoding); nullopt is a header with a null value (a NULL column, bare).
    std::vector<std::pair<std::string, std::optional<std::string>>> field_headers;
    // routing.header_encoding: json: the sink writes id, type, aggregate_type and content-type
    // JSON-encoded (strings; the id as a number when its column is an integer). Dead-letter
    // records keep bare headers.
    bool json_headers = false;
    bool id_is_number = false;
    // The record's partition (placement partition), or -1: the partitioner picks it from the key.
    std::int32_t partition = -1;
    // The timestamp column held a value that is not an ISO timestamp (infinity, a BC date):
    // occurred_at is the commit time instead.
    bool occurred_from_commit_time = false;
};

// PostgreSQL type OIDs the router treats specially (pg_type.dat).
namespace oid {
inline constexpr std::uint32_t kBytea = 17;
inline constexpr std::uint32_t kText = 25;
inline constexpr std::uint32_t kJson = 114;
inline constexpr std::uint32_t kBpchar = 1042;
inline constexpr std::uint32_t kVarchar = 1043;
inline constexpr std::uint32_t kTimestamp = 1114;
inline constexpr std::uint32_t kTimestamptz = 1184;
inline constexpr std::uint32_t kJsonb = 3802;
}  // namespace oid

// "\x0a0b" (bytea hex output) -> raw bytes. Fails on odd length or a non-hex digit.
[[nodiscard]] std::expected<std::string, std::string> decodeByteaHex(std::string_view text);

// PostgreSQL's ISO text output of timestamp/timestamptz ("2026-11-27 02:25:29.5+00") to Unix
// microseconds. A value without an offset is taken as UTC.
[[nodiscard]] std::expected<std::int64_t, std::string> parseTimestamp(std::string_view text);

class Router {
public:
    explicit Router(const config::Config& config);
    ~Router();
    Router(Router&&) noexcept;
    Router& operator=(Router&&) = delete;

    // A Relation message arrived. Returns true when it is one of the configured outbox tables,
    // after resolving its columns; an error when a configured column is missing.
    [[nodiscard]] std::expected<bool, Error> onRelation(const cdc::pgoutput::Relation& relation);

    [[nodiscard]] bool isOutbox(cdc::pgoutput::RelationId id) const {
        return relations_.contains(id.value);
    }

    // Builds the record for one inserted outbox row into `out` (its buffers are reused). An
    // InvalidRow error means this row cannot become a record (lastInvalidReason() says why);
    // deadLetter() can then make its dead-letter record.
    [[nodiscard]] std::expected<void, Error> route(const cdc::pgoutput::Insert& insert,
                                                   const ChangeContext& ctx, OutboxEvent& out);

    // The dead-letter record of a row that route() refused as invalid: topic
    // invalid_rows.dead_letter_topic, the row's key when it renders, the payload column's
    // original bytes as the value, and the headers id, type, aggregate_type, outboxd.error,
    // outboxd.lsn and outboxd.table.
    [[nodiscard]] std::expected<void, Error> deadLetter(const cdc::pgoutput::Insert& insert,
                                                        const ChangeContext& ctx, std::string_view error,
                                                        OutboxEvent& out);

    // A logical message whose prefix is in source.outbox.messages.prefixes, as a row of a relation
    // outboxd makes up for that prefix (schema pg_logical_emit_message, table the prefix, a column
    // per configured name): `out` can then go to route() like any insert. Its values point into
    // this router's buffers, valid until the next call. Content that is not one JSON object is an
    // InvalidRow error (lastInvalidReason() "bad_message").
    [[nodiscard]] std::expected<void, Error> messageRow(const cdc::pgoutput::LogicalMessage& message,
                                                        const ChangeContext& ctx, cdc::pgoutput::Insert& out);

    // The dead-letter record of a message that messageRow() refused: its content as it is, a null
    // key, the headers outboxd.error, outboxd.lsn and outboxd.table (pg_logical_emit_message.<prefix>).
    void messageDeadLetter(const cdc::pgoutput::LogicalMessage& message, const ChangeContext& ctx,
                           std::string_view error, OutboxEvent& out);

    // Why route() last refused a row: a metric label (null_id, null_topic, invalid_topic,
    // bad_bytea, payload_type, untyped, bad_partition).
    [[nodiscard]] std::string_view lastInvalidReason() const { return last_invalid_reason_; }

    // The typed-payload set used from the next row on (nullptr: payloads pass as they are).
    // Not owned; it must outlive its use here.
    void setTypedPayloads(payload::TypedPayloads* set) { typed_ = set; }

private:
    struct Resolved {
        // This table's columns and templates (its entry in source.outbox.tables, else the
        // global ones); the templates point into the configuration.
        config::OutboxColumns columns;
        const config::Template* topic = nullptr;
        const config::Template* key = nullptr;
        std::vector<int> topic_group_numbers;  // per part of *topic: its regex group, or -1
        std::string schema;
        std::string table;
        int id = -1;
        int aggregate_type = -1;
        int aggregate_id = -1;
        int type = -1;
        int payload = -1;
        int timestamp = -1;
        std::uint32_t payload_type = 0;
        std::uint32_t timestamp_type = 0;
        std::vector<int> topic_columns;  // per template part, -1 for literal text
        std::vector<int> key_columns;
        std::size_t column_count = 0;
        std::uint32_t id_type = 0;
        // Per routing.additional_fields entry: its column's index and type.
        std::vector<std::pair<int, std::uint32_t>> fields;
    };

    std::expected<void, Error> resolve(const cdc::pgoutput::Relation& relation, const config::TableRouting& routing);
    // The routing.topic_regex group number of each part of `topic` (-1 for the others); empty
    // without a regex.
    [[nodiscard]] std::vector<int> groupNumbers(const config::Template& topic) const;

    const config::Config& config_;
    std::unordered_map<std::uint32_t, Resolved> relations_;
    // Logical messages: the made-up relation of each prefix seen (ids below any table's OID),
    // the column names they share, the parser and the values of the last message.
    std::unordered_map<std::string, std::uint32_t> message_relations_;
    std::vector<std::string> message_columns_;
    MessageContent message_content_;
    std::vector<std::optional<std::string>> message_values_;
    payload::TypedPayloads* typed_ = nullptr;
    std::string_view last_invalid_reason_;
    std::string bytea_scratch_;
    JsonCompactor json_;
    // The message route() fills and serializes, reused from row to row: every field is set or
    // cleared on each row, so its strings and sub-messages keep their buffers (no allocation per
    // event once they are large enough).
    std::unique_ptr<outboxd::v1::Event> event_;
    // routing.topic_regex compiled (nullptr when not set), and the groups of the last match.
    std::unique_ptr<common::Regex> topic_regex_;
    std::vector<std::string_view> topic_groups_;
};

}  // namespace outboxd::outbox
