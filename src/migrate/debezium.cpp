#include "migrate/debezium.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <simdjson.h>

#include "common/regex.h"
#include "config/config.h"

namespace outboxd::migrate {

namespace {

constexpr std::string_view kPostgresConnector = "io.debezium.connector.postgresql.PostgresConnector";
constexpr std::string_view kEventRouter = "io.debezium.transforms.outbox.EventRouter";
constexpr std::string_view kDecodeMessages = "io.debezium.connector.postgresql.transforms.DecodeLogicalDecodingMessageContent";
constexpr std::string_view kDefaultRegex = "(?<routedByValue>.*)";
constexpr std::string_view kDefaultReplacement = "outbox.event.${routedByValue}";

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::vector<std::string> splitList(std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto comma = s.find(',', start);
        const auto item = trim(s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (!item.empty()) out.push_back(item);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

// A YAML double-quoted scalar.
std::string yamlQuoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

// A column or table name as outboxd reads it: as it is when SQL would not fold it, else quoted.
bool plainIdentifier(std::string_view s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s.front())) != 0) return false;
    return std::ranges::all_of(s, [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}
std::string identifier(std::string_view s) {
    if (plainIdentifier(s)) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        out += c;
        if (c == '"') out += '"';
    }
    return out + "\"";
}
std::string placeholder(std::string_view column) { return "{" + identifier(column) + "}"; }

// A comment line may not hold a line break.
std::string oneLine(std::string_view s) {
    std::string out;
    for (char c : s) out += (c == '\n' || c == '\r') ? ' ' : c;
    return out;
}

// A value given as ${NAME} (Debezium Server's and outboxd's own environment expansion) is kept.
bool isEnvReference(std::string_view v) {
    if (v.size() < 4 || !v.starts_with("${") || !v.ends_with("}")) return false;
    const auto name = v.substr(2, v.size() - 3);
    return !name.empty() && std::ranges::all_of(name, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
    });
}

// A libpq key=value value.
std::string dsnValue(std::string_view v) {
    const bool plain = !v.empty() && std::ranges::none_of(v, [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '\'' || c == '\\';
    });
    if (plain) return std::string(v);
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

struct Options {
    std::map<std::string, std::string, std::less<>> values;
    std::set<std::string, std::less<>> used;
    std::optional<std::string> take(std::string_view key) {
        auto it = values.find(key);
        if (it == values.end()) return std::nullopt;
        used.insert(std::string(key));
        return it->second;
    }
    bool has(std::string_view key) const { return values.contains(key); }
};

std::expected<std::vector<std::pair<std::string, std::string>>, std::string> parseJson(std::string_view text) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto error = parser.parse(text.data(), text.size()).get(root); error) {
        return std::unexpected(fmt::format("it starts with '{{' but is not valid JSON ({})", simdjson::error_message(error)));
    }
    simdjson::dom::object object;
    if (root.get_object().get(object)) return std::unexpected("its JSON is not an object");
    simdjson::dom::object config;
    if (!object["config"].get_object().get(config)) object = config;
    std::vector<std::pair<std::string, std::string>> out;
    for (auto field : object) {
        std::string value;
        switch (field.value.type()) {
            case simdjson::dom::element_type::STRING: value = std::string(std::string_view(field.value.get_string())); break;
            case simdjson::dom::element_type::INT64: value = std::to_string(int64_t(field.value)); break;
            case simdjson::dom::element_type::UINT64: value = std::to_string(uint64_t(field.value)); break;
            case simdjson::dom::element_type::DOUBLE: value = fmt::format("{}", double(field.value)); break;
            case simdjson::dom::element_type::BOOL: value = bool(field.value) ? "true" : "false"; break;
            case simdjson::dom::element_type::NULL_VALUE: continue;
            default: value = simdjson::minify(field.value); break;
        }
        out.emplace_back(std::string(field.key), std::move(value));
    }
    return out;
}

// table.include.list entries that name one table (no regex beyond an escaped or bare '.').
std::optional<std::string> plainTable(std::string_view entry) {
    std::string name;
    for (std::size_t i = 0; i < entry.size(); ++i) {
        const char c = entry[i];
        if (c == '\\' && i + 1 < entry.size() && entry[i + 1] == '.') {
            name += '.';
            ++i;
        } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.') {
            name += c;
        } else {
            return std::nullopt;
        }
    }
    const auto dot = name.find('.');
    if (dot == std::string::npos) return identifier(name);
    if (name.find('.', dot + 1) != std::string::npos || dot == 0 || dot + 1 == name.size()) return std::nullopt;
    return identifier(name.substr(0, dot)) + "." + identifier(name.substr(dot + 1));
}

// Names of Java producer properties librdkafka knows under the same or another name.
const std::map<std::string_view, std::string_view>& producerNames() {
    static const std::map<std::string_view, std::string_view> names{
        {"client.id", "client.id"},
        {"compression.type", "compression.type"},
        {"linger.ms", "linger.ms"},
        {"batch.size", "batch.size"},
        {"request.timeout.ms", "request.timeout.ms"},
        {"delivery.timeout.ms", "message.timeout.ms"},
        {"max.request.size", "message.max.bytes"},
        {"security.protocol", "security.protocol"},
        {"sasl.mechanism", "sasl.mechanism"},
        {"ssl.endpoint.identification.algorithm", "ssl.endpoint.identification.algorithm"},
        {"metadata.max.age.ms", "metadata.max.age.ms"},
        {"socket.connection.setup.timeout.ms", "socket.connection.setup.timeout.ms"},
        {"reconnect.backoff.ms", "reconnect.backoff.ms"},
        {"reconnect.backoff.max.ms", "reconnect.backoff.max.ms"},
        {"retry.backoff.ms", "retry.backoff.ms"},
    };
    return names;
}

// username="..." in a JAAS line.
std::optional<std::string> jaasValue(std::string_view jaas, std::string_view name) {
    std::size_t at = 0;
    while ((at = jaas.find(name, at)) != std::string_view::npos) {
        const bool starts = at == 0 || std::isspace(static_cast<unsigned char>(jaas[at - 1])) != 0;
        std::size_t i = at + name.size();
        while (i < jaas.size() && jaas[i] == ' ') ++i;
        if (starts && i < jaas.size() && jaas[i] == '=') {
            ++i;
            while (i < jaas.size() && jaas[i] == ' ') ++i;
            if (i < jaas.size() && jaas[i] == '"') {
                const auto end = jaas.find('"', i + 1);
                if (end != std::string_view::npos) return std::string(jaas.substr(i + 1, end - i - 1));
            }
        }
        at += name.size();
    }
    return std::nullopt;
}

struct Output {
    std::vector<std::string> notes;
    void note(std::string text) { notes.push_back(oneLine(text)); }
};

std::string shown(std::string_view key, std::string_view value) {
    if (config::isSecretKey(key) || key.find("jaas") != std::string_view::npos) return "(a secret, not copied)";
    return std::string(value);
}

}  // namespace

std::expected<std::vector<std::pair<std::string, std::string>>, std::string> parseProperties(std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    const auto n = text.size();
    auto isBlank = [](char c) { return c == ' ' || c == '\t' || c == '\f'; };
    while (i < n) {
        // One logical line: join continuations (an odd number of trailing backslashes).
        std::string line;
        bool first = true;
        while (i < n) {
            auto end = text.find_first_of("\r\n", i);
            if (end == std::string_view::npos) end = n;
            std::string_view physical = text.substr(i, end - i);
            i = end;
            if (i < n && text[i] == '\r') ++i;
            if (i < n && text[i] == '\n') ++i;
            if (!first) {
                while (!physical.empty() && isBlank(physical.front())) physical.remove_prefix(1);
            } else {
                while (!physical.empty() && isBlank(physical.front())) physical.remove_prefix(1);
                if (physical.empty() || physical.front() == '#' || physical.front() == '!') break;
            }
            first = false;
            std::size_t backslashes = 0;
            while (backslashes < physical.size() && physical[physical.size() - 1 - backslashes] == '\\') ++backslashes;
            if (backslashes % 2 == 1) {
                line.append(physical.substr(0, physical.size() - 1));
                continue;
            }
            line.append(physical);
            break;
        }
        if (line.empty()) continue;
        std::string key;
        std::string value;
        std::size_t j = 0;
        auto unescape = [&](std::string& target, bool is_key) -> std::expected<void, std::string> {
            while (j < line.size()) {
                char c = line[j];
                if (is_key && (c == '=' || c == ':' || isBlank(c))) return {};
                ++j;
                if (c != '\\') {
                    target += c;
                    continue;
                }
                if (j >= line.size()) return {};
                c = line[j++];
                switch (c) {
                    case 't': target += '\t'; break;
                    case 'n': target += '\n'; break;
                    case 'r': target += '\r'; break;
                    case 'f': target += '\f'; break;
                    case 'u': {
                        if (j + 4 > line.size()) return std::unexpected("a \\u escape needs four hex digits");
                        unsigned cp = 0;
                        for (int k = 0; k < 4; ++k) {
                            const char h = line[j++];
                            cp <<= 4;
                            if (h >= '0' && h <= '9') cp |= static_cast<unsigned>(h - '0');
                            else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
                            else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
                            else return std::unexpected("a \\u escape needs four hex digits");
                        }
                        if (cp < 0x80) {
                            target += static_cast<char>(cp);
                        } else if (cp < 0x800) {
                            target += static_cast<char>(0xC0 | (cp >> 6));
                            target += static_cast<char>(0x80 | (cp & 0x3F));
                        } else {
                            target += static_cast<char>(0xE0 | (cp >> 12));
                            target += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                            target += static_cast<char>(0x80 | (cp & 0x3F));
                        }
                        break;
                    }
                    default: target += c; break;
                }
            }
            return {};
        };
        if (auto ok = unescape(key, true); !ok) return std::unexpected(ok.error());
        while (j < line.size() && isBlank(line[j])) ++j;
        if (j < line.size() && (line[j] == '=' || line[j] == ':')) ++j;
        while (j < line.size() && isBlank(line[j])) ++j;
        if (auto ok = unescape(value, false); !ok) return std::unexpected(ok.error());
        std::erase_if(out, [&](const auto& kv) { return kv.first == key; });
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

std::expected<std::string, std::string> javaReplacementToTemplate(std::string_view replacement,
                                                                  const std::function<bool(int)>& group_exists) {
    std::string out;
    for (std::size_t i = 0; i < replacement.size(); ++i) {
        const char c = replacement[i];
        if (c == '\\') {
            if (i + 1 >= replacement.size()) return std::unexpected("it ends in a lone '\\'");
            const char next = replacement[++i];
            if (next == '{' || next == '}') out += next;
            out += next;
            continue;
        }
        if (c == '{' || c == '}') {
            out += c;
            out += c;
            continue;
        }
        if (c != '$') {
            out += c;
            continue;
        }
        if (i + 1 >= replacement.size()) return std::unexpected("it ends in a '$' that names no group");
        if (replacement[i + 1] == '{') {
            const auto close = replacement.find('}', i + 2);
            if (close == std::string_view::npos) return std::unexpected("a '${' is not closed with '}'");
            const auto name = replacement.substr(i + 2, close - i - 2);
            const bool valid = !name.empty() && std::isalpha(static_cast<unsigned char>(name.front())) != 0 &&
                               std::ranges::all_of(name, [](char g) { return std::isalnum(static_cast<unsigned char>(g)) != 0; });
            if (!valid) return std::unexpected(fmt::format("'${{{}}}' is not a group name", name));
            out += fmt::format("{{${}}}", name);
            i = close;
            continue;
        }
        if (!std::isdigit(static_cast<unsigned char>(replacement[i + 1]))) {
            return std::unexpected(fmt::format("'$' at character {} is followed by neither a group number nor {{name}}", i + 1));
        }
        int number = replacement[++i] - '0';
        if (!group_exists(number)) return std::unexpected(fmt::format("'${}' names no group of the regex", number));
        while (i + 1 < replacement.size() && std::isdigit(static_cast<unsigned char>(replacement[i + 1]))) {
            const int longer = number * 10 + (replacement[i + 1] - '0');
            if (!group_exists(longer)) break;
            number = longer;
            ++i;
        }
        out += fmt::format("{{${}}}", number);
    }
    return out;
}

std::expected<Conversion, std::string> fromDebezium(std::string_view text, std::string_view source) {
    const std::string trimmed = trim(text);
    if (trimmed.empty()) return std::unexpected("it is empty; give a Kafka Connect connector JSON or a Debezium Server application.properties");
    std::expected<std::vector<std::pair<std::string, std::string>>, std::string> entries =
        trimmed.front() == '{' ? parseJson(trimmed) : parseProperties(text);
    if (!entries) return std::unexpected(entries.error());

    const bool server = std::ranges::any_of(*entries, [](const auto& kv) { return kv.first.starts_with("debezium."); });
    Output o;
    Options connector;  // the connector's options, transforms.* included
    Options producer;   // Kafka producer properties
    Options format;     // Debezium Server's debezium.format.* without the prefix; Connect's converters
    std::vector<std::pair<std::string, std::string>> others;
    std::optional<std::string> sink_type;
    for (auto& [key, value] : *entries) {
        if (server) {
            if (key.starts_with("debezium.source.")) {
                connector.values[key.substr(16)] = value;
            } else if (key == "debezium.transforms" || key.starts_with("debezium.transforms.")) {
                connector.values[key.substr(9)] = value;
            } else if (key.starts_with("debezium.sink.kafka.producer.")) {
                producer.values[key.substr(29)] = value;
            } else if (key.starts_with("debezium.format.")) {
                format.values[key.substr(16)] = value;
            } else if (key == "debezium.sink.type") {
                sink_type = value;
            } else {
                others.emplace_back(key, value);
            }
        } else if (key.starts_with("producer.override.")) {
            producer.values[key.substr(18)] = value;
        } else {
            connector.values[key] = value;
        }
    }

    const auto connector_class = connector.take("connector.class");
    if (!connector_class) {
        return std::unexpected(fmt::format("it has no {}connector.class; expected a Debezium PostgreSQL connector ({})",
                                           server ? "debezium.source." : "", kPostgresConnector));
    }
    if (*connector_class != kPostgresConnector) {
        return std::unexpected(fmt::format("its connector.class is '{}', not the Debezium PostgreSQL connector ({})",
                                           *connector_class, kPostgresConnector));
    }
    const std::string transforms_key = server ? "debezium.transforms" : "transforms";
    std::optional<std::string> router;
    std::optional<std::string> decoder;
    for (const auto& name : splitList(connector.take("transforms").value_or(""))) {
        const auto type = connector.take("transforms." + name + ".type");
        if (type == kEventRouter && !router) {
            router = name;
        } else if (type == kDecodeMessages && !decoder) {
            decoder = name;
        } else {
            o.note(fmt::format("{} '{}' (type {}): outboxd has no such transform; its records are not changed by it",
                               transforms_key, name, type.value_or("not given")));
        }
    }
    if (!router) {
        return std::unexpected(fmt::format("it has no Outbox Event Router: {} lists no transform whose type is {}",
                                           transforms_key, kEventRouter));
    }
    const std::string prefix = "transforms." + *router + ".";
    auto opt = [&](std::string_view name) { return connector.take(prefix + std::string(name)); };
    if (decoder) {
        for (auto& [key, value] : connector.values) {
            if (key.starts_with("transforms." + *decoder + ".") && key != "transforms." + *decoder + ".type") {
                connector.used.insert(key);
                o.note(fmt::format("{}.{}={}: no equivalent; outboxd reads the message content as JSON named like the columns",
                                   transforms_key, key.substr(11), value));
            }
        }
    }

    // --- source.postgres ---
    std::vector<std::string> dsn;
    const std::pair<std::string_view, std::string_view> dsn_keys[] = {
        {"database.hostname", "host"},       {"database.port", "port"},         {"database.dbname", "dbname"},
        {"database.user", "user"},           {"database.sslmode", "sslmode"},   {"database.sslrootcert", "sslrootcert"},
        {"database.sslcert", "sslcert"},     {"database.sslkey", "sslkey"}};
    for (const auto& [key, libpq] : dsn_keys) {
        if (auto v = connector.take(key)) dsn.push_back(fmt::format("{}={}", libpq, dsnValue(*v)));
    }
    if (auto password = connector.take("database.password")) {
        if (isEnvReference(*password)) {
            dsn.push_back("password=" + *password);
        } else {
            dsn.push_back("password=${OUTBOXD_PG_PASSWORD}");
            o.note("database.password: not copied into this file; outboxd reads it from the environment variable "
                   "OUTBOXD_PG_PASSWORD (set it, or use a .pgpass file and remove password= from the dsn)");
        }
    }
    if (dsn.empty()) {
        return std::unexpected(
            "it names no database (database.hostname, database.dbname, ...); a Debezium PostgreSQL connector "
            "configuration has them");
    }
    const auto slot_name = connector.take("slot.name").value_or("debezium");
    o.note(fmt::format("slot.name={}: outboxd needs a slot of its own (slot: outboxd here); see \"Switching without "
                       "losing an event\" in docs/debezium.md",
                       slot_name));
    const auto publication = connector.take("publication.name").value_or("dbz_publication");
    const auto autocreate = connector.take("publication.autocreate.mode").value_or("all_tables");
    bool create_publication = true;
    if (autocreate == "disabled") {
        create_publication = false;
    } else if (autocreate == "all_tables") {
        o.note(fmt::format("publication.autocreate.mode=all_tables: Debezium made {} FOR ALL TABLES; outboxd uses it "
                           "as it is when it exists, and otherwise creates it FOR TABLE the outbox tables",
                           publication));
    }
    if (auto plugin = connector.take("plugin.name"); plugin && *plugin != "pgoutput") {
        o.note(fmt::format("plugin.name={}: outboxd decodes pgoutput only; its own slot is created with pgoutput", *plugin));
    }
    std::optional<std::string> failover = connector.take("slot.failover");

    // --- source.outbox ---
    std::vector<std::string> tables;
    std::optional<std::string> include = connector.take("table.include.list");
    if (!include) include = connector.take("table.whitelist");
    if (include) {
        for (const auto& entry : splitList(*include)) {
            if (auto table = plainTable(entry)) {
                tables.push_back(*table);
            } else {
                o.note(fmt::format("table.include.list entry '{}' is a pattern; list each outbox table it stands for in "
                                   "source.outbox.tables",
                                   entry));
            }
        }
    } else {
        o.note("table.include.list is not set (Debezium then captures every table); source.outbox.tables lists "
               "public.outbox, outboxd's default: put the outbox tables there");
    }
    if (tables.empty()) tables.push_back("public.outbox");

    const auto id_column = opt("table.field.event.id").value_or("id");
    const auto key_column = opt("table.field.event.key").value_or("aggregateid");
    const auto type_column = opt("table.field.event.type").value_or("type");
    const auto payload_column = opt("table.field.event.payload").value_or("payload");
    const auto route_column = opt("route.by.field").value_or("aggregatetype");
    const auto timestamp_column = opt("table.field.event.timestamp");
    if (timestamp_column) {
        o.note(fmt::format("{}table.field.event.timestamp={}: carried over as source.outbox.columns.timestamp; Debezium "
                           "makes it the record's timestamp, outboxd the envelope's occurred_at",
                           prefix, *timestamp_column));
    }

    std::vector<std::string> prefixes;
    const auto message_include = connector.take("message.prefix.include.list");
    if (decoder) {
        if (message_include) {
            for (const auto& entry : splitList(*message_include)) {
                if (std::ranges::all_of(entry, [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-'; })) {
                    prefixes.push_back(entry);
                } else {
                    o.note(fmt::format("message.prefix.include.list entry '{}' is a pattern; list each prefix it stands "
                                       "for in source.outbox.messages.prefixes",
                                       entry));
                }
            }
        } else {
            o.note("message.prefix.include.list is not set (Debezium then takes every prefix); list the prefixes of "
                   "the outbox messages in source.outbox.messages.prefixes");
        }
    } else if (message_include) {
        o.note(fmt::format("message.prefix.include.list={}: without the DecodeLogicalDecodingMessageContent transform "
                           "these messages are not outbox events; not carried over",
                           *message_include));
    }

    // --- routing ---
    std::string topic;
    std::optional<std::string> topic_regex;
    const auto regex = opt("route.topic.regex").value_or(std::string(kDefaultRegex));
    const auto replacement = opt("route.topic.replacement").value_or(std::string(kDefaultReplacement));
    auto compiled = common::Regex::compile(regex);
    const std::string fallback_topic = "outbox.event." + placeholder(route_column);
    if (!compiled) {
        topic = fallback_topic;
        o.note(fmt::format("ROUTING NOT CARRIED OVER: route.topic.regex={} is {}; routing.topic is outboxd's default "
                           "until you write the equivalent",
                           regex, compiled.error()));
    } else {
        auto translated = javaReplacementToTemplate(
            replacement, [&](int n) { return compiled->group(std::to_string(n)).has_value(); });
        if (!translated) {
            topic = fallback_topic;
            o.note(fmt::format("ROUTING NOT CARRIED OVER: route.topic.replacement={}: {}; routing.topic is outboxd's "
                               "default until you write the equivalent",
                               replacement, translated.error()));
        } else {
            std::optional<std::string> whole_group;
            if (regex == ".*") whole_group = "0";
            if (regex == "(.*)") whole_group = "1";
            if (regex.starts_with("(?<") && regex.ends_with(">.*)")) whole_group = regex.substr(3, regex.size() - 7);
            if (whole_group && compiled->group(*whole_group)) {
                const int number = *compiled->group(*whole_group);
                // Every reference to the group that holds the whole value is the column itself.
                std::string simple;
                auto parsed = config::parseTemplate(*translated);
                bool ok = parsed.has_value();
                for (const auto& part : ok ? parsed->parts : std::vector<config::Template::Part>{}) {
                    if (part.is_group) {
                        const auto g = compiled->group(part.text);
                        if (!g || (*g != number && *g != 0)) ok = false;
                        simple += placeholder(route_column);
                    } else {
                        for (char c : part.text) {
                            simple += c;
                            if (c == '{' || c == '}') simple += c;
                        }
                    }
                }
                if (ok) {
                    topic = simple;
                } else {
                    topic = *translated;
                    topic_regex = regex;
                }
            } else {
                topic = *translated;
                topic_regex = regex;
            }
        }
    }
    if (topic != fallback_topic) {
        auto parsed = config::parseTemplate(topic);
        const bool literal_ok = parsed && std::ranges::all_of(parsed->parts, [](const config::Template::Part& part) {
            return part.is_column || part.is_group || std::ranges::all_of(part.text, [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
            });
        });
        if (!literal_ok) {
            o.note(fmt::format("ROUTING NOT CARRIED OVER: route.topic.replacement={} has characters a Kafka topic name "
                               "cannot hold; routing.topic is outboxd's default until you write the equivalent",
                               replacement));
            topic = fallback_topic;
            topic_regex.reset();
        }
    }
    const std::string key_template = placeholder(key_column);

    std::optional<std::string> tombstone = opt("route.tombstone.on.empty.payload");
    std::optional<std::string> on_update = opt("table.op.invalid.behavior");
    if (on_update && *on_update != "warn" && *on_update != "error" && *on_update != "fatal") {
        o.note(fmt::format("{}table.op.invalid.behavior={}: not one of warn, error, fatal; routing.on_update keeps its "
                           "default (warn)",
                           prefix, *on_update));
        on_update.reset();
    }
    std::optional<std::string> expand = opt("table.expand.json.payload");

    struct Additional {
        std::string column, placement, alias;
    };
    std::vector<Additional> additional;
    bool envelope_placement = false;
    if (auto placement = opt("table.fields.additional.placement")) {
        for (const auto& item : splitList(*placement)) {
            std::vector<std::string> parts;
            std::size_t start = 0;
            for (;;) {
                const auto colon = item.find(':', start);
                parts.push_back(trim(item.substr(start, colon == std::string::npos ? std::string::npos : colon - start)));
                if (colon == std::string::npos) break;
                start = colon + 1;
            }
            const std::string where = parts.size() >= 2 ? lower(parts[1]) : "";
            if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() ||
                (where != "header" && where != "envelope" && where != "partition")) {
                o.note(fmt::format("{}table.fields.additional.placement entry '{}' is not column:header|envelope|"
                                   "partition[:alias]; not carried over",
                                   prefix, item));
                continue;
            }
            envelope_placement = envelope_placement || where == "envelope";
            additional.push_back({parts[0], where, parts.size() == 3 && !parts[2].empty() ? parts[2] : parts[0]});
        }
    }
    for (const auto* name : {"table.field.additional.missing", "table.fields.additional.error.on.missing"}) {
        if (auto v = opt(name)) {
            o.note(fmt::format("{}{}={}: not carried over; outboxd stops at an outbox table that lacks a configured "
                               "column",
                               prefix, name, *v));
        }
    }

    // --- value and header formats ---
    std::optional<std::string> header_encoding;
    if (server) {
        const auto value_format = format.take("value").value_or("json");
        if (value_format != "simplestring" && value_format != "binary") {
            o.note(fmt::format("debezium.format.value={}: outboxd publishes the payload's own text or bytes "
                               "(routing.value: payload), as Debezium's simplestring and binary formats do; Debezium's "
                               "{} format encodes the value differently",
                               value_format, value_format));
        }
        if (envelope_placement) {
            o.note("an envelope placement: outboxd's value becomes the JSON object {\"payload\": ..., \"<alias>\": ...}, "
                   "as Debezium's JSON format without schemas writes it (its simplestring format writes Java's Struct{...} "
                   "text instead)");
        }
        // Debezium Server's header format is json unless set otherwise, and its JSON converter wraps
        // each header value in {"schema": ..., "payload": ...} unless schemas are turned off
        // (integration-tests/debezium-compare.sh saw both with Debezium Server 3.6.1).
        const auto header = format.take("header").value_or("json");
        const auto header_schemas = format.take("header.schemas.enable").value_or("true");
        if (header == "json") {
            header_encoding = "json";
            if (header_schemas != "false") {
                o.note("debezium.format.header.schemas.enable is not false: Debezium Server wraps each header value in "
                       "{\"schema\": ..., \"payload\": ...}; outboxd writes the JSON value alone (routing.header_encoding: "
                       "json, the \"payload\" part): consumers that unwrap the schema need a change, or set "
                       "debezium.format.header.schemas.enable=false in Debezium first");
            }
        } else {
            o.note(fmt::format("debezium.format.header={}: outboxd writes bare header values (json: JSON-encoded)", header));
        }
        for (auto& [key, value] : format.values) {
            if (!format.used.contains(key)) o.note(fmt::format("debezium.format.{}={}: not carried over", key, value));
        }
        if (sink_type && *sink_type != "kafka") {
            o.note(fmt::format("debezium.sink.type={}: outboxd publishes to Kafka only", *sink_type));
        }
    } else {
        if (auto header = connector.take("header.converter");
            header && header->find("JsonConverter") != std::string::npos) {
            header_encoding = "json";
        }
        const auto value_converter = connector.take("value.converter");
        const bool same = value_converter && (value_converter->ends_with("StringConverter") ||
                                              value_converter->ends_with("ByteArrayConverter") ||
                                              value_converter->ends_with("BinaryDataConverter"));
        if (!same) {
            o.note(fmt::format("value.converter={}: outboxd publishes the payload's own text or bytes (routing.value: "
                               "payload), as StringConverter and ByteArrayConverter do; another converter encodes the "
                               "value differently",
                               value_converter.value_or("(not set: the worker's)")));
        }
        if (envelope_placement) {
            o.note("an envelope placement: outboxd's value becomes the JSON object {\"payload\": ..., \"<alias>\": ...}, "
                   "as JsonConverter with schemas.enable=false writes it");
        }
    }

    // --- sink.kafka ---
    std::string brokers;
    std::vector<std::pair<std::string, std::string>> properties;
    if (auto servers = producer.take("bootstrap.servers")) {
        brokers = *servers;
    } else {
        brokers = "${OUTBOXD_KAFKA_BROKERS}";
        o.note(server ? "debezium.sink.kafka.producer.bootstrap.servers is not set: sink.kafka.brokers reads the "
                        "environment variable OUTBOXD_KAFKA_BROKERS"
                      : "the connector configuration does not name the brokers (the Connect worker's "
                        "bootstrap.servers does): sink.kafka.brokers reads the environment variable OUTBOXD_KAFKA_BROKERS");
    }
    if (auto jaas = producer.take("sasl.jaas.config")) {
        const auto user = jaasValue(*jaas, "username");
        const auto password = jaasValue(*jaas, "password");
        if (user && password) {
            properties.emplace_back("sasl.username", *user);
            properties.emplace_back("sasl.password",
                                    isEnvReference(*password) ? *password : "${OUTBOXD_KAFKA_SASL_PASSWORD}");
            if (!isEnvReference(*password)) {
                o.note("sasl.jaas.config: its username is sasl.username; its password is not copied into this file: "
                       "outboxd reads it from the environment variable OUTBOXD_KAFKA_SASL_PASSWORD");
            }
        } else {
            o.note("sasl.jaas.config without username=\"...\" and password=\"...\" (OAUTHBEARER, GSSAPI): not carried "
                   "over; see librdkafka's sasl.* properties");
        }
    }
    for (auto& [key, value] : producer.values) {
        if (producer.used.contains(key)) continue;
        const auto& names = producerNames();
        const auto found = names.find(key);
        std::string carried_name = found == names.end() ? std::string() : std::string(found->second);
        std::string carried_value = value;
        if (key == "ssl.endpoint.identification.algorithm" && value.empty()) carried_value = "none";
        if (!carried_name.empty() && !config::checkProducerProperty(carried_name, carried_value)) {
            properties.emplace_back(carried_name, carried_value);
            continue;
        }
        std::string why = "no librdkafka equivalent outboxd carries over";
        if (key == "key.serializer" || key == "value.serializer") why = "outboxd writes the bytes itself";
        if (key == "acks" || key == "enable.idempotence" || key == "max.in.flight.requests.per.connection" ||
            key == "retries") {
            why = "outboxd sets it (acks=all, idempotent producer)";
        }
        if (key.starts_with("ssl.truststore") || key.starts_with("ssl.keystore")) {
            why = "librdkafka reads PEM files: ssl.ca.location, ssl.certificate.location, ssl.key.location";
        }
        o.note(fmt::format("{}{}={}: {}", server ? "debezium.sink.kafka.producer." : "producer.override.", key,
                           shown(key, value), why));
    }

    // --- the rest of the connector's options, and any other lines ---
    const std::map<std::string_view, std::string_view> reasons{
        {"snapshot.mode", "outboxd takes no snapshot: it publishes rows inserted after its slot exists"},
        {"topic.prefix", "the router names every outbox topic; outboxd publishes nothing else"},
        {"database.server.name", "the router names every outbox topic; outboxd publishes nothing else"},
        {"tombstones.on.delete", "outboxd skips DELETEs on the outbox, as the router does"},
        {"tasks.max", "outboxd is one process per slot"},
        {"name", "the connector's name"},
    };
    for (const auto& [key, value] : connector.values) {
        if (connector.used.contains(key)) continue;
        const auto reason = reasons.find(key);
        o.note(fmt::format("{}{}={}: {}", key.starts_with("transforms.") ? (server ? "debezium." : "") : (server ? "debezium.source." : ""),
                           key, shown(key, value),
                           reason != reasons.end() ? std::string(reason->second) : std::string("not carried over")));
    }
    for (const auto& [key, value] : others) {
        o.note(fmt::format("{}={}: not carried over", key, shown(key, value)));
    }

    // --- the YAML ---
    std::string y;
    y += fmt::format("# outboxd configuration made by `outboxd --from-debezium {}` from a {}.\n", oneLine(source),
                     server ? "Debezium Server application.properties" : "Kafka Connect connector configuration");
    y += "# Each option it could not carry over is a note at the end. Check them, then: outboxd --check-config --config FILE\n";
    y += "source:\n  postgres:\n";
    std::string dsn_text;
    for (const auto& part : dsn) dsn_text += (dsn_text.empty() ? "" : " ") + part;
    y += fmt::format("    dsn: {}\n", yamlQuoted(dsn_text));
    y += "    slot: outboxd\n";
    y += fmt::format("    publication: {}\n", yamlQuoted(publication));
    y += fmt::format("    create_publication: {}\n", create_publication ? "true" : "false");
    if (failover) y += fmt::format("    failover: {}\n", lower(*failover) == "true" ? "true" : "false");
    y += "  outbox:\n    tables:\n";
    for (const auto& t : tables) y += fmt::format("      - {}\n", yamlQuoted(t));
    y += "    columns:\n";
    y += fmt::format("      id: {}\n", yamlQuoted(identifier(id_column)));
    y += fmt::format("      aggregate_type: {}\n", yamlQuoted(identifier(route_column)));
    y += fmt::format("      aggregate_id: {}\n", yamlQuoted(identifier(key_column)));
    y += fmt::format("      type: {}\n", yamlQuoted(identifier(type_column)));
    y += fmt::format("      payload: {}\n", yamlQuoted(identifier(payload_column)));
    if (timestamp_column) y += fmt::format("      timestamp: {}\n", yamlQuoted(identifier(*timestamp_column)));
    if (!prefixes.empty()) {
        y += "    messages:\n      prefixes:\n";
        for (const auto& p : prefixes) y += fmt::format("        - {}\n", yamlQuoted(p));
    }
    y += "routing:\n";
    y += fmt::format("  topic: {}\n", yamlQuoted(topic));
    if (topic_regex) y += fmt::format("  topic_regex: {}\n", yamlQuoted(*topic_regex));
    y += fmt::format("  key: {}\n", yamlQuoted(key_template));
    y += "  value: payload\n";
    if (tombstone) y += fmt::format("  tombstone_on_empty_payload: {}\n", lower(*tombstone) == "true" ? "true" : "false");
    if (on_update) y += fmt::format("  on_update: {}\n", *on_update);
    if (expand && lower(*expand) == "true") y += "  expand_json_payload: true\n";
    if (header_encoding) y += fmt::format("  header_encoding: {}\n", *header_encoding);
    if (!additional.empty()) {
        y += "  additional_fields:\n";
        for (const auto& a : additional) {
            y += fmt::format("    - {{column: {}, placement: {}, as: {}}}\n", yamlQuoted(identifier(a.column)), a.placement,
                             yamlQuoted(a.alias));
        }
    }
    y += "sink:\n  kafka:\n";
    y += fmt::format("    brokers: {}\n", yamlQuoted(brokers));
    if (!properties.empty()) {
        y += "    properties:\n";
        for (const auto& [k, v] : properties) y += fmt::format("      {}: {}\n", k, yamlQuoted(v));
    }
    if (!o.notes.empty()) {
        y += "# Not carried over, or carried over with a difference:\n";
        for (const auto& n : o.notes) y += "#   - " + n + "\n";
    }
    return Conversion{std::move(y), std::move(o.notes)};
}

}  // namespace outboxd::migrate
