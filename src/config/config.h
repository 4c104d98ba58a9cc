#pragma once
// YAML configuration -> immutable, validated Config.
// Errors carry FILE:LINE:COL. yaml-cpp exceptions never leave this module.

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::config {

struct TableName {
    std::string schema;  // "public" when the key gives no schema
    std::string name;
    auto operator<=>(const TableName&) const = default;
};

struct PostgresConfig {
    std::string dsn;  // required; ${ENV} already expanded
    std::string slot = "outboxd";
    std::string publication = "outboxd";
    bool create_slot = true;
    bool create_publication = true;
    // The slot is a failover slot (PostgreSQL 17+): created with FAILOVER, checked at connect.
    bool failover = false;
    // How often a standby status update is sent when nothing else asks for one.
    std::chrono::milliseconds status_interval{1000};
    // Optional heartbeat: pg_logical_emit_message(false, 'outboxd.heartbeat', '') on a separate
    // connection, so that a slot whose server sends no keepalive for long still shows progress.
    // 0 disables it (the default).
    std::chrono::milliseconds heartbeat_interval{0};
    // How often the slot's state (retained WAL, wal_status, safe_wal_size) is read from
    // pg_replication_slots for the metrics; 0 disables it.
    std::chrono::milliseconds slot_check_interval{10000};
};

struct OutboxColumns {
    std::string id = "id";
    std::string aggregate_type = "aggregatetype";
    std::string aggregate_id = "aggregateid";
    std::string type = "type";
    std::string payload = "payload";
    // Optional column holding the time the event occurred; commit time when empty.
    std::string timestamp;
};

// What a non-transactional logical message with a listed prefix does: it belongs to no
// transaction, so it carries no outbox guarantee (it is decoded even if the writer rolls back).
enum class NonTransactional { Refuse, Accept };

// The table-less outbox: pg_logical_emit_message(true, prefix, content) with JSON content whose
// members are named like the columns.
struct MessagesConfig {
    std::vector<std::string> prefixes;  // [] = logical messages are not events
    NonTransactional non_transactional = NonTransactional::Refuse;
};

// "{column}" placeholders; "{$group}" (a name or a number) is a group of routing.topic_regex;
// "{{" and "}}" are literal braces.
struct Template {
    struct Part {
        bool is_column = false;
        std::string text;  // literal text, the column name, or the group's name or number
        bool is_group = false;  // a "{$group}" placeholder (is_column false)
    };
    std::string source;
    std::vector<Part> parts;
};

// What a map entry of source.outbox.tables sets for its table; each absent member falls back to
// source.outbox.columns or routing.topic / routing.key.
struct TableOverrides {
    std::optional<std::string> id;
    std::optional<std::string> aggregate_type;
    std::optional<std::string> aggregate_id;
    std::optional<std::string> type;
    std::optional<std::string> payload;
    std::optional<std::string> timestamp;
    std::optional<Template> topic;
    std::optional<Template> key;
};

struct OutboxConfig {
    // Every outbox table (the publication carries them all), names and map entries alike.
    std::vector<TableName> tables{TableName{"public", "outbox"}};
    OutboxColumns columns;
    MessagesConfig messages;
    // The tables given as a map with settings of their own; a table not here uses the global ones.
    std::map<TableName, TableOverrides> overrides;
};

// What a record's value is: the outboxd.v1.Event envelope, or the payload column alone (the
// converted message for a typed event), as Debezium's Outbox Event Router sends it.
enum class ValueMode { Envelope, Payload };
// What an UPDATE of an outbox row does (Debezium's table.op.invalid.behavior): skipped and logged
// at warning or error level, or a stop before confirming past it.
enum class OnUpdate { Warn, Error, Fatal };

// Where an additional column goes (Debezium's table.fields.additional.placement).
enum class Placement { Header, Envelope, Partition };

// One entry of routing.additional_fields: {column, placement, as}.
struct AdditionalField {
    std::string column;  // a column of every outbox table (an identifier, folded as SQL folds it)
    Placement placement = Placement::Header;
    std::string alias;   // the header or envelope member name; the column's name when `as` is absent
};

// How header values are written: bare text (Kafka Connect's SimpleHeaderConverter) or each one
// JSON-encoded (Debezium Server's JSON header format).
enum class HeaderEncoding { Bare, Json };

struct RoutingConfig {
    Template topic;  // default "outbox.event.{aggregatetype}"
    Template key;    // default "{aggregateid}"
    // Debezium's route.topic.regex: matched against the whole aggregate_type value; on a match the
    // topic is `topic` with its {$group} placeholders filled, otherwise the value itself (as
    // Kafka's RegexRouter leaves a topic it does not match). "" = no regex.
    std::string topic_regex;
    ValueMode value = ValueMode::Envelope;
    // A NULL or blank (empty or whitespace) payload is sent as a null value.
    bool tombstone_on_empty_payload = false;
    OnUpdate on_update = OnUpdate::Warn;
    // In the order written; at most one Partition entry, aliases unique per placement.
    std::vector<AdditionalField> additional_fields;
    HeaderEncoding header_encoding = HeaderEncoding::Bare;
    // routing.value: payload only: a JSON payload is embedded as a JSON value, not a string.
    bool expand_json_payload = false;
};

enum class Delivery { AtLeastOnce, ExactlyOnce };

struct KafkaConfig {
    std::string brokers;  // required
    // librdkafka properties, passed through verbatim (values as strings).
    std::map<std::string, std::string> properties;
    // Bounded wait for in-flight deliveries on shutdown.
    std::chrono::milliseconds shutdown_timeout{10000};
    Delivery delivery = Delivery::AtLeastOnce;
    // Exactly-once mode only. "" = derived from the system identifier and the slot.
    std::string transactional_id;
    std::string checkpoint_topic = "outboxd.checkpoints";
    // A Kafka transaction is committed at the first PostgreSQL commit after either bound.
    std::chrono::milliseconds transaction_interval{50};
    std::int64_t transaction_max_events = 10000;
};

struct MetricsConfig {
    std::string listen = "0.0.0.0:9898";  // "" disables the endpoint
};

enum class LogLevel { Trace, Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };

struct LogConfig {
    LogLevel level = LogLevel::Info;
    LogFormat format = LogFormat::Text;
};

// Typed event payloads (payload.protobuf): the descriptor set is loaded by the app at start and
// on reload, not here (this module links no protobuf).
enum class UnknownFields { Fail, Ignore };
enum class Untyped { Pass, Fail };

struct ProtobufPayloadConfig {
    std::string descriptor_set;                 // "" = payloads are published as they are
    std::map<std::string, std::string> types;  // event type -> message full name
    UnknownFields unknown_fields = UnknownFields::Fail;
    Untyped untyped = Untyped::Pass;
    // Where descriptor_set is written, so that a set that does not load is reported as
    // FILE:LINE:COL like any other configuration error.
    int line = 0;
    int column = 0;
};

struct PayloadConfig {
    ProtobufPayloadConfig protobuf;
};

// What happens to an outbox row that cannot become a record.
enum class InvalidRowAction { Fail, DeadLetter };

struct InvalidRowsConfig {
    InvalidRowAction action = InvalidRowAction::Fail;
    std::string dead_letter_topic = "outbox.dead-letter";
};

struct ConfigError {
    std::string file;
    int line = 0;    // 1-based; 0 when the error is not tied to a position
    int column = 0;  // 1-based
    std::string message;
    // "FILE:LINE:COL: message"
    [[nodiscard]] std::string toString() const;
};

struct Config {
    PostgresConfig postgres;
    OutboxConfig outbox;
    RoutingConfig routing;
    KafkaConfig kafka;
    MetricsConfig metrics;
    LogConfig log;
    PayloadConfig payload;
    InvalidRowsConfig invalid_rows;

    // The file's name and where each value read from it is (line, column; 1-based), by path
    // ("source.postgres.dsn", "sink.kafka.properties.acks"), so that checks made after parsing
    // (libpq's DSN parser, librdkafka's properties) report FILE:LINE:COL too.
    std::string file;
    std::map<std::string, std::pair<int, int>, std::less<>> positions;
    // An error at the value of `path`, or at the file alone when it has no recorded position.
    [[nodiscard]] ConfigError errorAt(std::string_view path, std::string message) const;
};

// What the rows of one outbox table use: its own columns, topic and key where its entry in
// source.outbox.tables sets them, the global ones otherwise. The templates point into `config`.
struct TableRouting {
    OutboxColumns columns;
    const Template* topic = nullptr;
    const Template* key = nullptr;
};
[[nodiscard]] TableRouting tableRouting(const Config& config, const TableName& table);

using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// Returns the process environment lookup (getenv).
[[nodiscard]] EnvLookup processEnv();

// Parses YAML text. `file` is used in error messages only.
[[nodiscard]] std::expected<Config, std::vector<ConfigError>> parseConfig(std::string_view yaml,
                                                                          std::string_view file,
                                                                          const EnvLookup& env);

// Reads and parses a file; an unreadable file is one error with line 0.
[[nodiscard]] std::expected<Config, std::vector<ConfigError>> loadConfig(const std::string& path,
                                                                         const EnvLookup& env);

// Parses a "{column}" template; used by parseConfig, exposed for tests and the router.
[[nodiscard]] std::expected<Template, std::string> parseTemplate(std::string_view text);

// Expands "${NAME}" and "${NAME:-default}" (default when unset or empty); "$$" is a literal
// "$", any other "$" is kept. The error names the variable, never the text being expanded.
[[nodiscard]] std::expected<std::string, std::string> expandEnv(std::string_view text,
                                                                const EnvLookup& env);

// Expands ${...} in a libpq key=value connection string so that a value cannot add or change
// options: inside a quoted value ' and \ are escaped; elsewhere whitespace, ' and \ are
// escaped with \, and an empty value followed by more options becomes ''. A URI (postgresql://,
// postgres://) is expanded as by expandEnv.
[[nodiscard]] std::expected<std::string, std::string> expandDsn(std::string_view text,
                                                                const EnvLookup& env);

// outboxd's own rules for librdkafka producer properties, shared by the configuration reader
// and the Kafka sink so that --check-config refuses exactly what the producer refuses. Returns
// the problem ("sink.kafka.properties.NAME: ..."), or nothing when the property is acceptable.
struct PropertyProblem {
    std::string message;
    bool at_key = false;  // the name itself is wrong (report at the key, not the value)
};
[[nodiscard]] std::optional<PropertyProblem> checkProducerProperty(std::string_view name,
                                                                   std::string_view value);

// The partitioners that map a key to one partition (librdkafka's names), outboxd's default first.
[[nodiscard]] std::span<const std::string_view> keyedPartitioners();

// Empty when `brokers` is a comma-separated list of host:port (port 1 to 65535; an IPv6 host
// in brackets; an optional PLAINTEXT:// SSL:// SASL_PLAINTEXT:// or SASL_SSL:// prefix), else
// what is wrong with it (never the list itself).
[[nodiscard]] std::optional<std::string> checkBrokers(std::string_view brokers);

// True for a key whose value must never be echoed (logs, metrics, error messages): its name
// contains "password", "secret", "key", "token" or "credential", or it is the postgres dsn.
[[nodiscard]] bool isSecretKey(std::string_view name);

}  // namespace outboxd::config
