#include "config/schema.h"

#include <algorithm>
#include <array>

namespace outboxd::config::schema {

namespace {

constexpr std::array<std::string_view, 5> kLogLevels{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> kLogFormats{"text", "json"};

constexpr std::array<std::string_view, 2> kUnknownFields{"fail", "ignore"};
constexpr std::array<std::string_view, 2> kUntyped{"pass", "fail"};
constexpr std::array<std::string_view, 2> kInvalidRowActions{"fail", "dead-letter"};
constexpr std::array<std::string_view, 2> kValueModes{"envelope", "payload"};
constexpr std::array<std::string_view, 3> kOnUpdate{"warn", "error", "fatal"};
constexpr std::array<std::string_view, 2> kNonTransactional{"refuse", "accept"};
constexpr std::array<std::string_view, 3> kPlacements{"header", "envelope", "partition"};
constexpr std::array<std::string_view, 2> kHeaderEncodings{"bare", "json"};
constexpr std::array<std::string_view, 2> kDeliveryModes{"at-least-once", "exactly-once"};

constexpr std::int64_t kHour = 3600000;

// clang-format off
constexpr std::array kKeys{
    Key{.path = "source", .type = Type::Section, .doc = "Where the events come from."},
    Key{.path = "source.postgres", .type = Type::Section, .doc = "The PostgreSQL database and its logical replication."},
    Key{.path = "source.postgres.dsn", .type = Type::String, .required = true,
        .doc = "libpq connection string or URI of the database holding the outbox."},
    Key{.path = "source.postgres.slot", .type = Type::String, .default_yaml = "outboxd",
        .doc = "Logical replication slot (plugin pgoutput)."},
    Key{.path = "source.postgres.publication", .type = Type::String, .default_yaml = "outboxd",
        .doc = "Publication that lists the outbox tables."},
    Key{.path = "source.postgres.create_slot", .type = Type::Bool, .default_yaml = "true",
        .doc = "Create the slot when it does not exist."},
    Key{.path = "source.postgres.create_publication", .type = Type::Bool, .default_yaml = "true",
        .doc = "Create the publication when it does not exist."},
    Key{.path = "source.postgres.status_interval_ms", .type = Type::Integer, .default_yaml = "1000",
        .min = 100, .max = 60000,
        .doc = "Interval of standby status updates when nothing else asks for one."},
    Key{.path = "source.postgres.heartbeat_interval_ms", .type = Type::Integer, .default_yaml = "0",
        .min = 0, .max = kHour,
        .doc = "Interval of pg_logical_emit_message heartbeats; 0 disables them."},
    Key{.path = "source.postgres.slot_check_interval_ms", .type = Type::Integer, .default_yaml = "10000",
        .min = 0, .max = kHour,
        .doc = "Interval of the slot state reads for the metrics; 0 disables them."},
    Key{.path = "source.postgres.failover", .type = Type::Bool, .default_yaml = "false",
        .doc = "Create the slot as a failover slot (PostgreSQL 17 and later); an existing slot must agree."},
    Key{.path = "source.outbox", .type = Type::Section, .doc = "The outbox tables and their columns."},
    Key{.path = "source.outbox.tables", .type = Type::MapList, .default_yaml = "[public.outbox]",
        .doc = "The outbox tables: each a name, \"schema.table\" or \"table\" (schema public), or a map {name, columns, topic, key} with settings of its own."},
    Key{.path = "source.outbox.tables.name", .type = Type::String, .required = true,
        .doc = "The table, \"schema.table\" or \"table\" (schema public)."},
    Key{.path = "source.outbox.tables.columns", .type = Type::Section,
        .doc = "This table's column names; each one not given is the one in source.outbox.columns."},
    Key{.path = "source.outbox.tables.columns.id", .type = Type::String, .default_yaml = "\"\"",
        .doc = "This table's event id column; empty: source.outbox.columns.id."},
    Key{.path = "source.outbox.tables.columns.aggregate_type", .type = Type::String, .default_yaml = "\"\"",
        .doc = "This table's aggregate kind column; empty: source.outbox.columns.aggregate_type."},
    Key{.path = "source.outbox.tables.columns.aggregate_id", .type = Type::String, .default_yaml = "\"\"",
        .doc = "This table's aggregate id column; empty: source.outbox.columns.aggregate_id."},
    Key{.path = "source.outbox.tables.columns.type", .type = Type::String, .default_yaml = "\"\"",
        .doc = "This table's event type column; empty: source.outbox.columns.type."},
    Key{.path = "source.outbox.tables.columns.payload", .type = Type::String, .default_yaml = "\"\"",
        .doc = "This table's payload column; empty: source.outbox.columns.payload."},
    Key{.path = "source.outbox.tables.columns.timestamp", .type = Type::String, .default_yaml = "\"\"",
        .doc = "This table's occurred-at column; empty: source.outbox.columns.timestamp."},
    Key{.path = "source.outbox.tables.topic", .type = Type::Template, .default_yaml = "\"\"",
        .doc = "This table's Kafka topic template; empty: routing.topic."},
    Key{.path = "source.outbox.tables.key", .type = Type::Template, .default_yaml = "\"\"",
        .doc = "This table's record key template; empty: routing.key."},
    Key{.path = "source.outbox.columns", .type = Type::Section, .doc = "Column names in the outbox tables."},
    Key{.path = "source.outbox.columns.id", .type = Type::String, .default_yaml = "id",
        .doc = "Column holding the unique event id."},
    Key{.path = "source.outbox.columns.aggregate_type", .type = Type::String, .default_yaml = "aggregatetype",
        .doc = "Column holding the kind of aggregate."},
    Key{.path = "source.outbox.columns.aggregate_id", .type = Type::String, .default_yaml = "aggregateid",
        .doc = "Column holding the aggregate's id."},
    Key{.path = "source.outbox.columns.type", .type = Type::String, .default_yaml = "type",
        .doc = "Column holding the event type."},
    Key{.path = "source.outbox.columns.payload", .type = Type::String, .default_yaml = "payload",
        .doc = "Column holding the event body."},
    Key{.path = "source.outbox.columns.timestamp", .type = Type::String, .default_yaml = "\"\"",
        .doc = "Column holding the time the event occurred; empty: the commit time."},
    Key{.path = "source.outbox.messages", .type = Type::Section,
        .doc = "The table-less outbox: logical decoding messages (pg_logical_emit_message) as events."},
    Key{.path = "source.outbox.messages.prefixes", .type = Type::StringList, .default_yaml = "[]",
        .doc = "Prefixes of the messages that are events; [] (none) = messages are not events."},
    Key{.path = "source.outbox.messages.non_transactional", .type = Type::Enum, .default_yaml = "refuse",
        .choices = kNonTransactional,
        .doc = "A non-transactional message with a listed prefix: refuse (stop) or accept (an event of its own)."},
    Key{.path = "routing", .type = Type::Section, .doc = "Topic and key of each event."},
    Key{.path = "routing.topic", .type = Type::Template, .default_yaml = "\"outbox.event.{aggregatetype}\"",
        .doc = "Kafka topic of each event."},
    Key{.path = "routing.topic_regex", .type = Type::String, .default_yaml = "\"\"",
        .doc = "Regex matched against the whole aggregate_type value; routing.topic may then use its groups as {$name} or {$1}."},
    Key{.path = "routing.key", .type = Type::Template, .default_yaml = "\"{aggregateid}\"",
        .doc = "Kafka record key of each event."},
    Key{.path = "routing.value", .type = Type::Enum, .default_yaml = "envelope", .choices = kValueModes,
        .doc = "Record value: envelope (an outboxd.v1.Event) or payload (the payload alone, Debezium's shape)."},
    Key{.path = "routing.tombstone_on_empty_payload", .type = Type::Bool, .default_yaml = "false",
        .doc = "A NULL or blank payload becomes a tombstone (null value, key and headers kept)."},
    Key{.path = "routing.on_update", .type = Type::Enum, .default_yaml = "warn", .choices = kOnUpdate,
        .doc = "An UPDATE of an outbox row: warn or error (logged at that level, skipped) or fatal (stop)."},
    Key{.path = "routing.additional_fields", .type = Type::MapList, .default_yaml = "[]",
        .doc = "More columns of the row as headers, envelope members or the partition (Debezium's table.fields.additional.placement)."},
    Key{.path = "routing.additional_fields.column", .type = Type::String, .required = true,
        .doc = "The column, in every outbox table."},
    Key{.path = "routing.additional_fields.placement", .type = Type::Enum, .required = true, .choices = kPlacements,
        .doc = "header (a Kafka header), envelope (a member of the value) or partition (the record's partition)."},
    Key{.path = "routing.additional_fields.as", .type = Type::String, .default_yaml = "\"\"",
        .doc = "The header or member name; empty: the column's name."},
    Key{.path = "routing.header_encoding", .type = Type::Enum, .default_yaml = "bare", .choices = kHeaderEncodings,
        .doc = "Header values: bare text (Kafka Connect's default) or json (each value JSON-encoded, Debezium Server's JSON header format)."},
    Key{.path = "routing.expand_json_payload", .type = Type::Bool, .default_yaml = "false",
        .doc = "routing.value: payload only: a JSON payload is embedded as JSON, not as a string (Debezium's table.expand.json.payload)."},
    Key{.path = "sink", .type = Type::Section, .doc = "Where the events go."},
    Key{.path = "sink.kafka", .type = Type::Section, .doc = "The Kafka producer."},
    Key{.path = "sink.kafka.brokers", .type = Type::String, .required = true,
        .doc = "Comma-separated bootstrap brokers, host:port."},
    Key{.path = "sink.kafka.properties", .type = Type::FreeMap, .default_yaml = "{}",
        .doc = "librdkafka producer properties, passed through verbatim."},
    Key{.path = "sink.kafka.shutdown_timeout_ms", .type = Type::Integer, .default_yaml = "10000",
        .min = 0, .max = 600000,
        .doc = "How long to wait for in-flight deliveries on shutdown."},
    Key{.path = "sink.kafka.delivery", .type = Type::Enum, .default_yaml = "at-least-once", .choices = kDeliveryModes,
        .doc = "at-least-once (idempotent producer) or exactly-once (Kafka transactions and a checkpoint topic)."},
    Key{.path = "sink.kafka.transactional_id", .type = Type::String, .default_yaml = "\"\"",
        .doc = "exactly-once: the producer's transactional.id; empty: outboxd-<system identifier>-<slot>."},
    Key{.path = "sink.kafka.checkpoint_topic", .type = Type::String, .default_yaml = "outboxd.checkpoints",
        .doc = "exactly-once: compacted topic of the checkpoint records, keyed by slot (created when missing)."},
    Key{.path = "sink.kafka.transaction_interval_ms", .type = Type::Integer, .default_yaml = "50",
        .min = 1, .max = 60000,
        .doc = "exactly-once: a Kafka transaction is committed this long after it began (at a PostgreSQL commit)."},
    Key{.path = "sink.kafka.transaction_max_events", .type = Type::Integer, .default_yaml = "10000",
        .min = 1, .max = 10000000,
        .doc = "exactly-once: or once it holds this many events (never splitting a PostgreSQL transaction)."},
    Key{.path = "metrics", .type = Type::Section, .doc = "The HTTP endpoint."},
    Key{.path = "metrics.listen", .type = Type::String, .default_yaml = "\"0.0.0.0:9898\"",
        .doc = "host:port of /metrics, /healthz and /readyz; empty disables it."},
    Key{.path = "log", .type = Type::Section, .doc = "Logging."},
    Key{.path = "log.level", .type = Type::Enum, .default_yaml = "info", .choices = kLogLevels,
        .doc = "Lowest level logged."},
    Key{.path = "log.format", .type = Type::Enum, .default_yaml = "text", .choices = kLogFormats,
        .doc = "text, or json for one JSON object per line."},
    Key{.path = "payload", .type = Type::Section, .doc = "What the event payload becomes."},
    Key{.path = "payload.protobuf", .type = Type::Section,
        .doc = "Typed payloads: JSON payloads converted to protobuf messages."},
    Key{.path = "payload.protobuf.descriptor_set", .type = Type::String, .default_yaml = "\"\"",
        .doc = "FileDescriptorSet from protoc --include_imports --descriptor_set_out; empty: no typed payloads."},
    Key{.path = "payload.protobuf.types", .type = Type::FreeMap, .default_yaml = "{}",
        .doc = "Event type (the type column) to message full name."},
    Key{.path = "payload.protobuf.unknown_fields", .type = Type::Enum, .default_yaml = "fail",
        .choices = kUnknownFields, .doc = "A payload field the message does not have: fail, or ignore (drop it)."},
    Key{.path = "payload.protobuf.untyped", .type = Type::Enum, .default_yaml = "pass", .choices = kUntyped,
        .doc = "An event type not listed in types: pass (published as it is), or fail (an invalid row)."},
    Key{.path = "invalid_rows", .type = Type::Section, .doc = "Outbox rows that cannot become a record."},
    Key{.path = "invalid_rows.action", .type = Type::Enum, .default_yaml = "fail", .choices = kInvalidRowActions,
        .doc = "fail: stop before confirming past the row; dead-letter: publish it to dead_letter_topic and go on."},
    Key{.path = "invalid_rows.dead_letter_topic", .type = Type::String, .default_yaml = "outbox.dead-letter",
        .doc = "Topic of the dead-lettered rows."},
};
// clang-format on

}  // namespace

std::span<const Key> keys() {
    return kKeys;
}

const Key* find(std::string_view path) {
    const auto it = std::ranges::find(kKeys, path, &Key::path);
    return it == kKeys.end() ? nullptr : &*it;
}

std::string_view leafName(std::string_view path) {
    const auto dot = path.rfind('.');
    return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::string_view parentPath(std::string_view path) {
    const auto dot = path.rfind('.');
    return dot == std::string_view::npos ? std::string_view{} : path.substr(0, dot);
}

std::string_view typeName(Type type) {
    switch (type) {
        case Type::Section:
            return "map";
        case Type::FreeMap:
            return "map of string to scalar";
        case Type::String:
        case Type::Enum:
            return "string";
        case Type::Bool:
            return "bool";
        case Type::Integer:
            return "integer";
        case Type::Template:
            return "template";
        case Type::StringList:
            return "list of strings";
        case Type::MapList:
            return "list of maps";
    }
    return "?";
}

}  // namespace outboxd::config::schema
