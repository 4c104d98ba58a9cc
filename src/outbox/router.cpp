#include "outbox/router.h"

#include "common/regex.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

#include "outbox/payload/typed_payloads.h"
#include "outboxd/v1/event.pb.h"

namespace outboxd::outbox {

namespace {
// The schema of the relations made up for logical messages (Router::messageRow).
constexpr std::string_view kMessageSchema = "pg_logical_emit_message";
}  // namespace


namespace {

int hexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string_view contentTypeFor(std::uint32_t type_oid) {
    switch (type_oid) {
        case oid::kJson:
        case oid::kJsonb:
            return "application/json";
        case oid::kBytea:
            return "application/octet-stream";
        default:
            return "text/plain; charset=utf-8";
    }
}

// Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-], not "." or "..".
bool validTopic(std::string_view topic) {
    if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
    return std::ranges::all_of(topic, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
    });
}

void setTimestamp(google::protobuf::Timestamp* ts, std::int64_t unix_micros) {
    std::int64_t seconds = unix_micros / 1'000'000;
    std::int64_t micros = unix_micros % 1'000'000;
    if (micros < 0) {
        micros += 1'000'000;
        seconds -= 1;
    }
    ts->set_seconds(seconds);
    ts->set_nanos(static_cast<std::int32_t>(micros * 1000));
}

template <typename T>
bool readInt(std::string_view& s, std::size_t digits, T& out) {
    if (s.size() < digits) return false;
    auto r = std::from_chars(s.data(), s.data() + digits, out);
    if (r.ec != std::errc{} || r.ptr != s.data() + digits) return false;
    s.remove_prefix(digits);
    return true;
}

bool expect(std::string_view& s, char c) {
    if (s.empty() || s.front() != c) return false;
    s.remove_prefix(1);
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil algorithm).
std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Renders a "{column}" template from a row; `null_column` names the first referenced column that
// is NULL (nullptr when none is). A "{$group}" part takes groups[group_numbers[part]].
void renderTemplate(const config::Template& tmpl, const std::vector<int>& columns,
                    const cdc::pgoutput::Tuple& tuple, std::string& out, const std::string*& null_column,
                    const std::vector<int>* group_numbers = nullptr,
                    const std::vector<std::string_view>* groups = nullptr) {
    out.clear();
    null_column = nullptr;
    for (std::size_t i = 0; i < tmpl.parts.size(); ++i) {
        const auto& part = tmpl.parts[i];
        if (part.is_group && groups != nullptr) {
            out.append((*groups)[static_cast<std::size_t>((*group_numbers)[i])]);
            continue;
        }
        if (!part.is_column) {
            out.append(part.text);
            continue;
        }
        const auto& value = tuple[static_cast<std::size_t>(columns[i])];
        if (value.kind == cdc::pgoutput::ValueKind::Null || value.kind == cdc::pgoutput::ValueKind::UnchangedToast) {
            if (null_column == nullptr) null_column = &part.text;
            continue;
        }
        out.append(value.data);
    }
}

}  // namespace

std::expected<std::string, std::string> decodeByteaHex(std::string_view text) {
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x') {
        return std::unexpected("bytea value is not in hex format (expected \\x...)");
    }
    text.remove_prefix(2);
    if (text.size() % 2 != 0) {
        return std::unexpected("bytea hex value has an odd number of digits");
    }
    std::string out;
    out.resize(text.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hexDigit(text[2 * i]);
        int lo = hexDigit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::unexpected(fmt::format("bytea hex value has a non-hex digit at {}", 2 * i + 2));
        }
        out[i] = static_cast<char>((hi << 4) | lo);
    }
    return out;
}

std::expected<std::int64_t, std::string> parseTimestamp(std::string_view text) {
    std::string_view s = text;
    int year = 0;
    unsigned month = 0;
    unsigned day = 0;
    int hour = 0;
    int minute = 0;
    int second = 0;
    auto bad = [&] { return std::unexpected(fmt::format("'{}' is not an ISO timestamp", text)); };
    if (!readInt(s, 4, year) || !expect(s, '-') || !readInt(s, 2, month) || !expect(s, '-') ||
        !readInt(s, 2, day) || !(expect(s, ' ') || expect(s, 'T')) || !readInt(s, 2, hour) ||
        !expect(s, ':') || !readInt(s, 2, minute) || !expect(s, ':') || !readInt(s, 2, second)) {
        return bad();
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return bad();
    }
    std::int64_t micros = 0;
    if (!s.empty() && s.front() == '.') {
        s.remove_prefix(1);
        int digits = 0;
        while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
            if (digits < 6) {
                micros = micros * 10 + (s.front() - '0');
            }
            ++digits;
            s.remove_prefix(1);
        }
        if (digits == 0) return bad();
        for (int i = digits; i < 6; ++i) micros *= 10;
    }
    std::int64_t offset_seconds = 0;
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
        int sign = s.front() == '-' ? -1 : 1;
        s.remove_prefix(1);
        int oh = 0;
        int om = 0;
        int os = 0;
        if (!readInt(s, 2, oh)) return bad();
        if (expect(s, ':') && !readInt(s, 2, om)) return bad();
        if (expect(s, ':') && !readInt(s, 2, os)) return bad();
        offset_seconds = sign * (oh * 3600 + om * 60 + os);
    } else if (!s.empty() && s.front() == 'Z') {
        s.remove_prefix(1);
    }
    if (!s.empty()) return bad();
    std::int64_t days = daysFromCivil(year, month, day);
    std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
    return seconds * 1'000'000 + micros;
}

Router::Router(const config::Config& config) : config_(config), event_(std::make_unique<outboxd::v1::Event>()) {
    if (config.routing.topic_regex.empty()) return;
    auto compiled = common::Regex::compile(config.routing.topic_regex);
    if (!compiled) throw std::invalid_argument("routing.topic_regex: " + compiled.error());
    topic_regex_ = std::make_unique<common::Regex>(std::move(*compiled));
    (void)groupNumbers(config.routing.topic);
    for (const auto& [table, overrides] : config.outbox.overrides) {
        if (overrides.topic) (void)groupNumbers(*overrides.topic);
    }
}

std::vector<int> Router::groupNumbers(const config::Template& topic) const {
    std::vector<int> out;
    if (topic_regex_ == nullptr) return out;
    for (const auto& part : topic.parts) {
        const auto number = part.is_group ? topic_regex_->group(part.text) : std::nullopt;
        if (part.is_group && !number) throw std::invalid_argument("topic " + topic.source + ": no group " + part.text);
        out.push_back(number.value_or(-1));
    }
    return out;
}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;

std::expected<bool, Error> Router::onRelation(const cdc::pgoutput::Relation& relation) {
    const auto& tables = config_.outbox.tables;
    const auto table = std::ranges::find_if(tables, [&](const config::TableName& t) {
        return t.schema == relation.schema && t.name == relation.name;
    });
    if (table == tables.end()) {
        auto was = relations_.find(relation.id.value);
        if (was != relations_.end()) {
            return std::unexpected(Error{
                ErrorKind::PublicationMissing,
                fmt::format("outbox table {}.{} is now named {}.{} (renamed or moved with ALTER TABLE ... RENAME / "
                            "SET SCHEMA while outboxd was streaming), so its rows would no longer be recognised; put "
                            "the new name in source.outbox.tables (or rename the table back), then restart. The slot "
                            "stays at the last confirmed LSN, so nothing is skipped",
                            was->second.schema, was->second.table, relation.schema, relation.name)});
        }
        return false;
    }
    if (auto ok = resolve(relation, config::tableRouting(config_, *table)); !ok) return std::unexpected(ok.error());
    return true;
}

std::expected<void, Error> Router::resolve(const cdc::pgoutput::Relation& relation,
                                           const config::TableRouting& routing) {
    auto indexOf = [&](std::string_view name) -> int {
        for (std::size_t i = 0; i < relation.columns.size(); ++i) {
            if (relation.columns[i].name == name) return static_cast<int>(i);
        }
        return -1;
    };
    // Where the configuration names a column: source.outbox.columns, or the table's own entry.
    const auto& global = config_.outbox.columns;
    const std::string entry =
        fmt::format("the entry of {}.{} in source.outbox.tables", relation.schema, relation.name);
    auto missing = [&](std::string_view key, std::string_view column) {
        const std::string_view leaf = key.substr(key.find('.') + 1);
        const std::string* global_column = leaf == "id"               ? &global.id
                                           : leaf == "aggregate_type" ? &global.aggregate_type
                                           : leaf == "aggregate_id"   ? &global.aggregate_id
                                           : leaf == "type"           ? &global.type
                                           : leaf == "payload"        ? &global.payload
                                                                      : &global.timestamp;
        const std::string where = column == *global_column ? fmt::format("source.outbox.{}", key)
                                                           : fmt::format("{} of {}", key, entry);
        return std::unexpected(Error{
            ErrorKind::MappedColumnMissing,
            fmt::format("outbox table {}.{} has no column '{}' (configured as {}); add the column "
                        "or change the configuration, then restart. Nothing of this table was published past "
                        "the last confirmed LSN",
                        relation.schema, relation.name, column, where)});
    };
    const auto& cols = routing.columns;
    Resolved r;
    r.columns = routing.columns;
    r.topic = routing.topic;
    r.key = routing.key;
    r.topic_group_numbers = groupNumbers(*routing.topic);
    r.schema = relation.schema;
    r.table = relation.name;
    r.column_count = relation.columns.size();
    struct Want {
        std::string_view key;
        const std::string& column;
        int* slot;
    };
    Want wants[] = {{"columns.id", cols.id, &r.id},
                    {"columns.aggregate_type", cols.aggregate_type, &r.aggregate_type},
                    {"columns.aggregate_id", cols.aggregate_id, &r.aggregate_id},
                    {"columns.type", cols.type, &r.type},
                    {"columns.payload", cols.payload, &r.payload}};
    for (auto& w : wants) {
        *w.slot = indexOf(w.column);
        if (*w.slot < 0) return missing(w.key, w.column);
    }
    r.payload_type = relation.columns[static_cast<std::size_t>(r.payload)].type_oid;
    r.id_type = relation.columns[static_cast<std::size_t>(r.id)].type_oid;
    for (const auto& field : config_.routing.additional_fields) {
        const int idx = indexOf(field.column);
        if (idx < 0) {
            return std::unexpected(Error{
                ErrorKind::MappedColumnMissing,
                fmt::format("outbox table {}.{} has no column '{}' (named in routing.additional_fields); add the "
                            "column or remove the entry, then restart. Nothing of this table was published past "
                            "the last confirmed LSN",
                            relation.schema, relation.name, field.column)});
        }
        r.fields.emplace_back(idx, relation.columns[static_cast<std::size_t>(idx)].type_oid);
    }
    if (!cols.timestamp.empty()) {
        r.timestamp = indexOf(cols.timestamp);
        if (r.timestamp < 0) return missing("columns.timestamp", cols.timestamp);
        r.timestamp_type = relation.columns[static_cast<std::size_t>(r.timestamp)].type_oid;
    }
    auto resolveTemplate = [&](const config::Template& tmpl, std::string_view key,
                               std::vector<int>& out) -> std::expected<void, Error> {
        out.clear();
        for (const auto& part : tmpl.parts) {
            if (!part.is_column) {
                out.push_back(-1);
                continue;
            }
            int idx = indexOf(part.text);
            if (idx < 0) {
                const bool global_template = &tmpl == &config_.routing.topic || &tmpl == &config_.routing.key;
                return std::unexpected(Error{
                    ErrorKind::MappedColumnMissing,
                    fmt::format("{} '{}'{} names column '{}', which outbox table {}.{} does not have; fix the "
                                "template or add the column, then restart",
                                global_template ? fmt::format("routing.{}", key) : std::string(key), tmpl.source,
                                global_template ? std::string() : " of " + entry, part.text, relation.schema,
                                relation.name)});
            }
            out.push_back(idx);
        }
        return {};
    };
    if (auto ok = resolveTemplate(*routing.topic, "topic", r.topic_columns); !ok) {
        return std::unexpected(ok.error());
    }
    if (auto ok = resolveTemplate(*routing.key, "key", r.key_columns); !ok) {
        return std::unexpected(ok.error());
    }
    relations_[relation.id.value] = std::move(r);
    return {};
}

std::expected<void, Error> Router::messageRow(const cdc::pgoutput::LogicalMessage& message, const ChangeContext& ctx,
                                              cdc::pgoutput::Insert& out) {
    const std::string prefix(message.prefix);
    auto known = message_relations_.find(prefix);
    if (known == message_relations_.end()) {
        if (message_columns_.empty()) {
            const auto& cols = config_.outbox.columns;
            auto add = [&](const std::string& name) {
                if (!name.empty() && std::ranges::find(message_columns_, name) == message_columns_.end()) {
                    message_columns_.push_back(name);
                }
            };
            for (const std::string* name : {&cols.id, &cols.aggregate_type, &cols.aggregate_id, &cols.type,
                                            &cols.payload, &cols.timestamp}) {
                add(*name);
            }
            for (const auto* tmpl : {&config_.routing.topic, &config_.routing.key}) {
                for (const auto& part : tmpl->parts) {
                    if (part.is_column) add(part.text);
                }
            }
            for (const auto& field : config_.routing.additional_fields) add(field.column);
        }
        // Made-up relation ids count up from 1: PostgreSQL gives no table an OID that low.
        const auto id = static_cast<std::uint32_t>(message_relations_.size() + 1);
        cdc::pgoutput::Relation relation;
        relation.id = cdc::pgoutput::RelationId{id};
        relation.schema = std::string(kMessageSchema);
        relation.name = prefix;
        for (const auto& name : message_columns_) {
            const bool payload = name == config_.outbox.columns.payload;
            relation.columns.push_back(
                cdc::pgoutput::Column{0, name, payload ? oid::kJsonb : oid::kText, -1});
        }
        const config::TableRouting global{config_.outbox.columns, &config_.routing.topic, &config_.routing.key};
        if (auto ok = resolve(relation, global); !ok) return std::unexpected(ok.error());
        known = message_relations_.emplace(prefix, id).first;
    }
    if (auto parsed = message_content_.parse(message.content, message_columns_, message_values_); !parsed) {
        last_invalid_reason_ = "bad_message";
        return std::unexpected(Error{ErrorKind::InvalidRow,
                                     fmt::format("logical message with prefix '{}' at {} (xid {}): {}; it cannot "
                                                 "become an event (write a JSON object whose members are named "
                                                 "like source.outbox.columns)",
                                                 prefix, ctx.lsn, ctx.xid.value, parsed.error())});
    }
    out.xid = message.xid;
    out.relation = cdc::pgoutput::RelationId{known->second};
    out.new_tuple.clear();
    for (const auto& value : message_values_) {
        out.new_tuple.push_back(value ? cdc::pgoutput::Value{cdc::pgoutput::ValueKind::Text, *value}
                                      : cdc::pgoutput::Value{cdc::pgoutput::ValueKind::Null, {}});
    }
    return {};
}

void Router::messageDeadLetter(const cdc::pgoutput::LogicalMessage& message, const ChangeContext& ctx,
                               std::string_view error, OutboxEvent& out) {
    out.topic.assign(config_.invalid_rows.dead_letter_topic);
    out.key.clear();
    out.key_is_null = true;
    out.id.clear();
    out.type.clear();
    out.aggregate_type.clear();
    out.content_type.clear();
    out.occurred_from_commit_time = false;
    out.value_is_null = false;
    out.value.assign(reinterpret_cast<const char*>(message.content.data()), message.content.size());
    out.extra_headers.clear();
    out.field_headers.clear();
    out.json_headers = false;
    out.id_is_number = false;
    out.partition = -1;
    out.extra_headers.emplace_back("outboxd.error", std::string(error));
    out.extra_headers.emplace_back("outboxd.lsn", fmt::format("{}", ctx.lsn));
    out.extra_headers.emplace_back("outboxd.table", fmt::format("{}.{}", kMessageSchema, message.prefix));
}

std::expected<void, Error> Router::route(const cdc::pgoutput::Insert& insert, const ChangeContext& ctx,
                                         OutboxEvent& out) {
    auto it = relations_.find(insert.relation.value);
    if (it == relations_.end()) {
        return std::unexpected(Error{ErrorKind::Decode,
                                     fmt::format("insert at {} for relation {} that is not a known outbox table",
                                                 ctx.lsn, insert.relation.value)});
    }
    const Resolved& rel = it->second;
    const auto& tuple = insert.new_tuple;
    if (tuple.size() != rel.column_count) {
        return std::unexpected(Error{ErrorKind::Decode,
                                     fmt::format("insert at {} into {}.{} has {} columns, its relation has {}", ctx.lsn,
                                                 rel.schema, rel.table, tuple.size(), rel.column_count)});
    }
    auto text = [&](int idx) -> const cdc::pgoutput::Value& { return tuple[static_cast<std::size_t>(idx)]; };
    auto isNull = [](const cdc::pgoutput::Value& v) {
        return v.kind == cdc::pgoutput::ValueKind::Null || v.kind == cdc::pgoutput::ValueKind::UnchangedToast;
    };
    auto invalidBecause = [&](std::string_view reason, std::string message) {
        last_invalid_reason_ = reason;
        std::string inspect;
        if (!isNull(text(rel.id)) && rel.schema != kMessageSchema) {
            std::string literal;
            for (char c : text(rel.id).data) {
                literal += c;
                if (c == '\'') literal += c;
            }
            inspect = fmt::format("; inspect it with: SELECT * FROM {}.{} WHERE {} = '{}'", rel.schema, rel.table,
                                  rel.columns.id, literal);
        }
        return std::unexpected(Error{ErrorKind::InvalidRow,
                                     fmt::format("outbox row at {} (xid {}) in {}.{}: {}{}", ctx.lsn, ctx.xid.value,
                                                 rel.schema, rel.table, message, inspect)});
    };

    const auto& id = text(rel.id);
    if (isNull(id)) {
        return invalidBecause("null_id", fmt::format("column '{}' (the event id) is NULL", rel.columns.id));
    }
    out.id.assign(id.data);
    const auto& type = text(rel.type);
    out.type.assign(isNull(type) ? std::string_view{} : type.data);
    const auto& agg_type = text(rel.aggregate_type);
    out.aggregate_type.assign(isNull(agg_type) ? std::string_view{} : agg_type.data);
    out.content_type.assign(contentTypeFor(rel.payload_type));

    const std::string* topic_null = nullptr;
    if (topic_regex_ == nullptr) {
        renderTemplate(*rel.topic, rel.topic_columns, tuple, out.topic, topic_null);
    } else if (isNull(agg_type)) {
        topic_null = &rel.columns.aggregate_type;
    } else if (!topic_regex_->matchWhole(agg_type.data, topic_groups_)) {
        out.topic.assign(agg_type.data);
    } else {
        renderTemplate(*rel.topic, rel.topic_columns, tuple, out.topic, topic_null, &rel.topic_group_numbers,
                       &topic_groups_);
    }
    if (topic_null != nullptr) {
        return invalidBecause("null_topic", fmt::format("event {}: column '{}' is NULL, and routing.topic '{}' needs its value; give the "
                                   "row a value there (or change the template), then restart",
                                   out.id, *topic_null, rel.topic->source));
    }
    if (!validTopic(out.topic)) {
        return invalidBecause("invalid_topic", fmt::format("routing.topic renders '{}', which is not a valid Kafka topic name (1 to 249 of "
                                   "a-z A-Z 0-9 . _ -)",
                                   out.topic));
    }
    // A key that is one column and NULL is a null record key (as Debezium sends it); a NULL in a
    // key made of more would give a partial key, which would put the event on another partition.
    const std::string* key_null = nullptr;
    renderTemplate(*rel.key, rel.key_columns, tuple, out.key, key_null);
    out.key_is_null = key_null != nullptr && out.key.empty();
    if (key_null != nullptr && rel.key->parts.size() > 1) {
        return invalidBecause("null_key", fmt::format("event {}: column '{}' is NULL, and routing.key '{}' needs its value; give the "
                                   "row a value there (or change the template), then restart",
                                   out.id, *key_null, rel.key->source));
    }

    const bool json_headers = config_.routing.header_encoding == config::HeaderEncoding::Json;
    out.json_headers = json_headers;
    out.id_is_number = isIntegerType(rel.id_type);
    out.partition = -1;
    out.field_headers.clear();
    bool has_envelope_fields = false;
    const auto& fields = config_.routing.additional_fields;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto& field = fields[i];
        const auto& value = text(rel.fields[i].first);
        const std::uint32_t type_oid = rel.fields[i].second;
        switch (field.placement) {
            case config::Placement::Header:
                if (isNull(value)) {
                    out.field_headers.emplace_back(field.alias, json_headers ? std::optional<std::string>("null")
                                                                             : std::nullopt);
                } else if (json_headers) {
                    std::string encoded;
                    appendColumnJson(encoded, type_oid, value.data);
                    out.field_headers.emplace_back(field.alias, std::move(encoded));
                } else {
                    out.field_headers.emplace_back(field.alias, std::string(value.data));
                }
                break;
            case config::Placement::Envelope:
                has_envelope_fields = true;
                break;
            case config::Placement::Partition: {
                if (isNull(value)) break;
                std::int64_t n = -1;
                const auto* end = value.data.data() + value.data.size();
                const auto parsed = std::from_chars(value.data.data(), end, n);
                if (parsed.ec != std::errc{} || parsed.ptr != end || n < 0 || n > INT32_MAX) {
                    return invalidBecause(
                        "bad_partition",
                        fmt::format("event {}: column '{}' (routing.additional_fields, placement partition) holds "
                                    "'{}', which is not a partition number (an integer from 0 to {}); give the row "
                                    "a partition there (or NULL for the key's partition)",
                                    out.id, field.column, value.data, INT32_MAX));
                }
                out.partition = static_cast<std::int32_t>(n);
                break;
            }
        }
    }

    // Every field of the reused message is set (or cleared) below.
    outboxd::v1::Event& event = *event_;
    auto& envelope_fields = *event.mutable_additional_fields();
    envelope_fields.clear();
    if (has_envelope_fields && config_.routing.value == config::ValueMode::Envelope) {
        for (std::size_t i = 0; i < fields.size(); ++i) {
            const auto& value = text(rel.fields[i].first);
            if (fields[i].placement == config::Placement::Envelope && !isNull(value)) {
                envelope_fields[fields[i].alias] = value.data;
            }
        }
    }
    event.set_id(out.id);
    event.set_aggregate_type(out.aggregate_type);
    const auto& agg_id = text(rel.aggregate_id);
    if (!isNull(agg_id)) {
        event.mutable_aggregate_id()->assign(agg_id.data);
    } else {
        event.clear_aggregate_id();
    }
    event.set_type(out.type);
    const auto& payload = text(rel.payload);
    const bool binary = rel.payload_type == oid::kBytea && payload.kind == cdc::pgoutput::ValueKind::Text;
    std::string_view payload_bytes;
    if (!isNull(payload)) {
        payload_bytes = payload.data;
        if (binary) {
            auto raw = decodeByteaHex(payload.data);
            if (!raw) return invalidBecause("bad_bytea", fmt::format("payload: {}", raw.error()));
            bytea_scratch_ = std::move(*raw);
            payload_bytes = bytea_scratch_;
        }
    }
    // A tombstone (routing.tombstone_on_empty_payload): a NULL payload, a text one that is blank,
    // a bytea one of no bytes; it has no payload to convert or check.
    const bool tombstone =
        config_.routing.tombstone_on_empty_payload &&
        (isNull(payload) || (binary ? payload_bytes.empty() : std::ranges::all_of(payload_bytes, [](char c) {
             return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
         })));
    const std::string* message_type = typed_ == nullptr || tombstone ? nullptr : typed_->messageFor(out.type);
    if (message_type != nullptr && !isNull(payload)) {
        auto converted = typed_->convert(out.type, binary ? payload::PayloadForm::Binary : payload::PayloadForm::JsonText,
                                         payload_bytes, *event.mutable_payload());
        if (!converted) {
            return invalidBecause("payload_type", fmt::format("event {} of type '{}': column '{}': {}", out.id, out.type,
                                                              rel.columns.payload,
                                                              converted.error().message));
        }
        out.content_type.assign(payload::TypedPayloads::contentType(*message_type));
    } else if (typed_ != nullptr && message_type == nullptr && !tombstone &&
               config_.payload.protobuf.untyped == config::Untyped::Fail) {
        return invalidBecause("untyped", fmt::format("event {} has type '{}', which payload.protobuf.types does not "
                                                     "list (untyped: fail); add the type or set untyped: pass",
                                                     out.id, out.type));
    } else if (!isNull(payload)) {
        event.mutable_payload()->assign(payload_bytes);
    } else {
        event.clear_payload();
    }
    event.set_content_type(out.content_type);

    std::int64_t occurred = ctx.commit_time.unixMicros();
    out.occurred_from_commit_time = false;
    if (rel.timestamp >= 0 && !isNull(text(rel.timestamp))) {
        if (auto parsed = parseTimestamp(text(rel.timestamp).data)) {
            occurred = *parsed;
        } else {
            out.occurred_from_commit_time = true;
        }
    }
    setTimestamp(event.mutable_occurred_at(), occurred);

    auto* source = event.mutable_source();
    source->set_lsn(ctx.lsn.value());
    source->set_commit_lsn(ctx.commit_lsn.value());
    source->set_xid(ctx.xid.value);
    setTimestamp(source->mutable_commit_time(), ctx.commit_time.unixMicros());
    source->set_schema(rel.schema);
    source->set_table(rel.table);

    out.extra_headers.clear();
    out.value.clear();
    if (tombstone) {
        // A compacted topic forgets the aggregate (key and headers kept).
        out.value_is_null = true;
        return {};
    }
    if (config_.routing.value == config::ValueMode::Payload) {
        // Debezium's shape: the payload alone (the headers carry id, type and aggregate type);
        // with envelope fields the JSON object JsonConverter writes of the router's struct.
        const bool json_payload = message_type == nullptr && !binary && !isNull(payload);
        const bool expand = config_.routing.expand_json_payload && json_payload &&
                            (payload_bytes.starts_with('{') || payload_bytes.starts_with('['));
        if (!has_envelope_fields) {
            out.value_is_null = isNull(payload);
            if (expand && json_.append(out.value, payload_bytes)) return {};
            out.value.assign(event.payload());
            return {};
        }
        out.value_is_null = false;
        out.value.append("{\"payload\":");
        if (isNull(payload)) {
            out.value.append("null");
        } else if (!json_payload) {
            appendJsonBase64(out.value, event.payload());
        } else if (!expand || !json_.append(out.value, payload_bytes)) {
            appendJsonString(out.value, payload_bytes);
        }
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (fields[i].placement != config::Placement::Envelope) continue;
            out.value.push_back(',');
            appendJsonString(out.value, fields[i].alias);
            out.value.push_back(':');
            const auto& value = text(rel.fields[i].first);
            if (isNull(value)) {
                out.value.append("null");
            } else {
                appendColumnJson(out.value, rel.fields[i].second, value.data);
            }
        }
        out.value.push_back('}');
        return {};
    }
    out.value_is_null = false;
    if (!event.SerializeToString(&out.value)) {
        return invalidBecause("serialize", "the event could not be serialized");
    }
    return {};
}

std::expected<void, Error> Router::deadLetter(const cdc::pgoutput::Insert& insert, const ChangeContext& ctx,
                                              std::string_view error, OutboxEvent& out) {
    auto it = relations_.find(insert.relation.value);
    if (it == relations_.end() || insert.new_tuple.size() != it->second.column_count) {
        return std::unexpected(Error{ErrorKind::Decode,
                                     fmt::format("dead-letter at {}: relation {} is not a known outbox table", ctx.lsn,
                                                 insert.relation.value)});
    }
    const Resolved& rel = it->second;
    const auto& tuple = insert.new_tuple;
    auto valueOf = [&](int idx) -> std::string_view {
        const auto& v = tuple[static_cast<std::size_t>(idx)];
        if (v.kind == cdc::pgoutput::ValueKind::Null || v.kind == cdc::pgoutput::ValueKind::UnchangedToast) return {};
        return v.data;
    };
    out.topic.assign(config_.invalid_rows.dead_letter_topic);
    const std::string* key_null = nullptr;
    renderTemplate(*rel.key, rel.key_columns, tuple, out.key, key_null);
    out.key_is_null = key_null != nullptr && out.key.empty();
    out.id.assign(valueOf(rel.id));
    out.type.assign(valueOf(rel.type));
    out.aggregate_type.assign(valueOf(rel.aggregate_type));
    out.content_type.clear();
    out.occurred_from_commit_time = false;
    out.value_is_null = false;
    const auto payload = valueOf(rel.payload);
    out.value.assign(payload);
    if (rel.payload_type == oid::kBytea) {
        if (auto raw = decodeByteaHex(payload)) out.value = std::move(*raw);
    }
    out.extra_headers.clear();
    out.field_headers.clear();
    out.json_headers = false;
    out.id_is_number = false;
    out.partition = -1;
    out.extra_headers.emplace_back("outboxd.error", std::string(error));
    out.extra_headers.emplace_back("outboxd.lsn", fmt::format("{}", ctx.lsn));
    out.extra_headers.emplace_back("outboxd.table", fmt::format("{}.{}", rel.schema, rel.table));
    return {};
}

}  // namespace outboxd::outbox
