#include "config/config.h"

#include "common/regex.h"

#include "config/identifier.h"
#include "config/schema.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <deque>
#include <set>
#include <stdexcept>
#include <sstream>
#include <tuple>
#include <utility>

namespace outboxd::config {

namespace {

constexpr std::size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1
constexpr std::size_t kMaxTopicBytes = 249;

// The names allowed directly under `parent` ("" for the top level), in the table's order.
std::vector<std::string_view> childrenOf(std::string_view parent) {
    std::vector<std::string_view> out;
    for (const auto& key : schema::keys()) {
        if (schema::parentPath(key.path) == parent) {
            out.push_back(schema::leafName(key.path));
        }
    }
    return out;
}

// The table's row for a key the reading code asks for; a path missing from the table is a bug
// in outboxd, not in the file.
const schema::Key& schemaKey(std::string_view path) {
    const schema::Key* key = schema::find(path);
    if (key == nullptr) {
        throw std::logic_error(fmt::format("configuration key '{}' is read but not declared in "
                                           "src/config/schema.cpp",
                                           path));
    }
    return *key;
}

std::string toLower(std::string_view s) {
    std::string out(s);
    std::ranges::transform(out, out.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t");
    return std::string(s.substr(first, last - first + 1));
}

bool isIdentStart(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
}

bool isIdentChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

bool isIdentifier(std::string_view s) {
    return !s.empty() && isIdentStart(s.front()) && std::ranges::all_of(s, isIdentChar);
}

std::size_t editDistance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The candidate nearest to `word`, when it is near enough to be a likely typo.
std::optional<std::string_view> closest(std::string_view word,
                                        std::span<const std::string_view> candidates) {
    const std::string lowered = toLower(word);
    std::optional<std::string_view> best;
    std::size_t best_distance = 0;
    for (const auto candidate : candidates) {
        const std::size_t d = editDistance(lowered, candidate);
        if (!best || d < best_distance) {
            best = candidate;
            best_distance = d;
        }
    }
    const bool near = best_distance <= 1 || (best_distance <= 2 && word.size() >= 5) ||
                      best_distance * 3 <= std::max(word.size(), best->size());
    if (best && best_distance < word.size() && near) {
        return best;
    }
    for (const auto candidate : candidates) {
        if (lowered.size() >= 3 && (candidate.starts_with(lowered) || lowered.starts_with(candidate))) {
            return candidate;
        }
    }
    return std::nullopt;
}

std::string joinNames(std::span<const std::string_view> names) {
    std::string out;
    for (const auto name : names) {
        if (!out.empty()) {
            out += ", ";
        }
        out += name;
    }
    return out;
}

std::string joinPath(std::string_view parent, std::string_view name) {
    if (parent.empty()) {
        return std::string(name);
    }
    return fmt::format("{}.{}", parent, name);
}

struct Pos {
    int line = 0;
    int column = 0;
};

Pos toPos(const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) {
        return {};
    }
    return {mark.line + 1, mark.column + 1};
}

bool isQuoted(const YAML::Node& node) {
    const std::string& tag = node.Tag();
    return tag == "!" || tag.ends_with(":str");
}

bool looksBool(std::string_view text) {
    static constexpr std::array<std::string_view, 6> kWords{"true", "false", "yes",
                                                            "no",   "on",    "off"};
    const std::string lowered = toLower(text);
    return std::ranges::find(kWords, lowered) != kWords.end();
}

std::optional<std::int64_t> parseInteger(std::string_view text) {
    if (text.starts_with('+')) {
        text.remove_prefix(1);
    }
    std::int64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || text.empty()) {
        return std::nullopt;
    }
    return value;
}

bool looksNumber(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    char* end = nullptr;
    const std::string copy(text);
    std::strtod(copy.c_str(), &end);
    return end == copy.c_str() + copy.size();
}

// What a node holds, for "expected X, got Y". Never the value itself.
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return "nothing (null)";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Scalar:
            break;
    }
    if (isQuoted(node)) {
        return "a string";
    }
    const std::string& text = node.Scalar();
    if (looksBool(text)) {
        return "a bool";
    }
    if (parseInteger(text)) {
        return "an integer";
    }
    if (looksNumber(text)) {
        return "a number";
    }
    return "a string";
}

struct Field {
    YAML::Node key;
    YAML::Node value;
    Pos key_pos;

    // Where a problem with the value is reported: the value itself, or its key when it is
    // null (yaml-cpp marks an empty value at the next token, which would mislead).
    [[nodiscard]] Pos valuePos() const {
        if (value.IsNull()) {
            return key_pos;
        }
        const Pos p = toPos(value.Mark());
        return p.line == 0 ? key_pos : p;
    }
};

// A map as read from the file: its fields, and where a missing key is reported.
struct Section {
    std::string path;  // "" for the root, else "source.postgres"
    Pos anchor;        // the key naming this map (or the nearest one present)
    bool broken = false;  // present but not a map: missing keys below are not reported
    std::map<std::string, Field, std::less<>> fields;

    [[nodiscard]] const Field* find(std::string_view name) const {
        const auto it = fields.find(name);
        return it == fields.end() ? nullptr : &it->second;
    }
};

// Walks the YAML tree and collects every problem; owns nothing beyond one parseConfig call.
class Reader {
public:
    Reader(std::string_view file, const EnvLookup& env) : file_(file), env_(env) {}

    void error(Pos pos, std::string message) {
        errors_.push_back(ConfigError{file_, pos.line, pos.column, std::move(message)});
    }

    std::vector<ConfigError> takeErrors() {
        std::ranges::stable_sort(errors_, [](const ConfigError& a, const ConfigError& b) {
            return std::tie(a.line, a.column) < std::tie(b.line, b.column);
        });
        return std::move(errors_);
    }

    [[nodiscard]] bool ok() const { return errors_.empty(); }
    [[nodiscard]] std::size_t errorCount() const { return errors_.size(); }

    Section root(const YAML::Node& node) {
        const std::vector<std::string_view> allowed = childrenOf("");
        Section section;
        const Pos pos = toPos(node.Mark());
        section.anchor = pos.line == 0 ? Pos{1, 1} : pos;
        if (!node.IsMap()) {
            error(section.anchor,
                  fmt::format("expected a map of sections ({}) at the top level, got {}",
                              joinNames(allowed), describe(node)));
            section.broken = true;
            return section;
        }
        collect(node, section, allowed);
        return section;
    }

    Section child(const Section& parent, std::string_view name) {
        Section section;
        section.path = joinPath(parent.path, name);
        use(section.path);
        const std::vector<std::string_view> allowed = childrenOf(section.path);
        section.anchor = parent.anchor;
        section.broken = parent.broken;
        const Field* field = parent.find(name);
        if (field == nullptr) {
            return section;
        }
        section.anchor = field->key_pos;
        if (field->value.IsNull()) {
            return section;
        }
        if (!field->value.IsMap()) {
            error(field->valuePos(), fmt::format("{}: expected a map (keys: {}), got {}",
                                                 section.path, joinNames(allowed),
                                                 describe(field->value)));
            section.broken = true;
            return section;
        }
        collect(field->value, section, allowed);
        return section;
    }

    // A map with free-form keys (librdkafka properties, event types); `what` says what its
    // keys and values are.
    Section freeMap(const Section& parent, std::string_view name,
                    std::string_view what = "librdkafka property names to values") {
        Section section;
        section.path = joinPath(parent.path, name);
        use(section.path);
        section.anchor = parent.anchor;
        const Field* field = parent.find(name);
        if (field == nullptr || field->value.IsNull()) {
            return section;
        }
        section.anchor = field->key_pos;
        record(section.path, field->key_pos);
        if (!field->value.IsMap()) {
            error(field->valuePos(),
                  fmt::format("{}: expected a map of {}, got {}", section.path, what,
                              describe(field->value)));
            section.broken = true;
            return section;
        }
        collect(field->value, section, {});
        return section;
    }

    void missing(const Section& section, std::string_view name, std::string_view hint) {
        use(joinPath(section.path, name));
        if (section.broken) {
            return;
        }
        error(section.anchor,
              fmt::format("missing required key '{}': {}", joinPath(section.path, name), hint));
    }

    // Expands ${...} in a scalar; reports the problem under `path`.
    std::optional<std::string> expand(const Field& field, std::string_view path) {
        auto expanded = expandEnv(field.value.Scalar(), env_);
        if (!expanded) {
            error(field.valuePos(), fmt::format("{}: {}", path, expanded.error()));
            return std::nullopt;
        }
        return std::move(*expanded);
    }

    // The key as written in the file, or else its default from the table (positioned at the
    // section), or nullptr for an absent key without a default. Marks the key as read.
    const Field* lookup(const Section& section, std::string_view name) {
        const std::string path = joinPath(section.path, name);
        const schema::Key& key = use(path);
        if (const Field* field = section.find(name)) {
            record(path, field->valuePos());
            return field;
        }
        if (key.default_yaml.empty()) {
            return nullptr;
        }
        defaults_.push_back(Field{YAML::Node(std::string(name)),
                                  YAML::Load(std::string(key.default_yaml)), section.anchor});
        return &defaults_.back();
    }

    void record(std::string_view path, Pos pos) {
        if (pos.line > 0) {
            positions_.insert_or_assign(std::string(path), std::make_pair(pos.line, pos.column));
        }
    }

    std::map<std::string, std::pair<int, int>, std::less<>> takePositions() {
        return std::move(positions_);
    }

    const std::string& file() const { return file_; }

    // Where a problem with the key's value is reported.
    Pos valuePos(const Section& section, std::string_view name) const {
        const Field* field = section.find(name);
        return field == nullptr ? section.anchor : field->valuePos();
    }

    // Every key of the table that is not a section but was never asked for: a key declared in
    // the table must be read, or it would be accepted and ignored.
    void checkEveryKeyRead() {
        for (const auto& key : schema::keys()) {
            if (key.type != schema::Type::Section && !used_.contains(key.path)) {
                throw std::logic_error(fmt::format(
                    "configuration key '{}' is declared in src/config/schema.cpp but never read",
                    key.path));
            }
        }
    }

    std::optional<std::string> string(const Section& section, std::string_view name) {
        const Field* field = lookup(section, name);
        if (field == nullptr) {
            return std::nullopt;
        }
        const std::string path = joinPath(section.path, name);
        if (!field->value.IsScalar()) {
            error(field->valuePos(),
                  fmt::format("{}: expected a string, got {}{}", path, describe(field->value),
                              field->value.IsNull() ? "; write \"\" for an empty string" : ""));
            return std::nullopt;
        }
        return expand(*field, path);
    }

    // A libpq connection string: ${...} values are quoted so that they cannot add options.
    std::optional<std::string> dsn(const Section& section, std::string_view name) {
        const Field* field = lookup(section, name);
        if (field == nullptr) {
            return std::nullopt;
        }
        const std::string path = joinPath(section.path, name);
        if (!field->value.IsScalar()) {
            error(field->valuePos(), fmt::format("{}: expected a string, got {}", path,
                                                 describe(field->value)));
            return std::nullopt;
        }
        auto expanded = expandDsn(field->value.Scalar(), env_);
        if (!expanded) {
            error(field->valuePos(), fmt::format("{}: {}", path, expanded.error()));
            return std::nullopt;
        }
        return std::move(*expanded);
    }

    std::optional<bool> boolean(const Section& section, std::string_view name) {
        const Field* field = lookup(section, name);
        if (field == nullptr) {
            return std::nullopt;
        }
        const std::string path = joinPath(section.path, name);
        auto text = scalarForConversion(*field, path, "a bool (true or false)");
        if (!text) {
            return std::nullopt;
        }
        const std::string lowered = toLower(*text);
        if (lowered == "true" || lowered == "yes" || lowered == "on") {
            return true;
        }
        if (lowered == "false" || lowered == "no" || lowered == "off") {
            return false;
        }
        error(field->valuePos(),
              fmt::format("{}: expected a bool (true or false), got a string", path));
        return std::nullopt;
    }

    std::optional<std::int64_t> integer(const Section& section, std::string_view name) {
        const Field* field = lookup(section, name);
        if (field == nullptr) {
            return std::nullopt;
        }
        const std::string path = joinPath(section.path, name);
        const schema::Key& key = schemaKey(path);
        const std::int64_t min = key.min;
        const std::int64_t max = key.max;
        auto text = scalarForConversion(*field, path, "an integer");
        if (!text) {
            return std::nullopt;
        }
        const auto value = parseInteger(*text);
        if (!value) {
            error(field->valuePos(), fmt::format("{}: expected an integer, got {}", path,
                                                 looksNumber(*text) ? "a number" : "a string"));
            return std::nullopt;
        }
        if (*value < min || *value > max) {
            error(field->valuePos(), fmt::format("{}: must be between {} and {}, got {}", path, min,
                                                 max, *value));
            return std::nullopt;
        }
        return value;
    }

    // One map of a list of maps (a MapList key at `path`): its keys checked against the rows
    // under `path`, missing keys reported at the entry.
    Section entry(std::string_view path, const YAML::Node& item, Pos pos) {
        Section section;
        section.path = std::string(path);
        section.anchor = pos;
        const std::vector<std::string_view> allowed = childrenOf(path);
        collect(item, section, allowed);
        return section;
    }

private:
    const schema::Key& use(std::string_view path) {
        const schema::Key& key = schemaKey(path);
        used_.insert(key.path);
        return key;
    }

    void collect(const YAML::Node& map, Section& section,
                 std::span<const std::string_view> allowed) {
        for (auto it = map.begin(); it != map.end(); ++it) {
            Field field{it->first, it->second, toPos(it->first.Mark())};
            if (!field.key.IsScalar()) {
                error(field.key_pos, fmt::format("{}: a key must be a plain name, got {}",
                                                 section.path.empty() ? "top level" : section.path,
                                                 describe(field.key)));
                continue;
            }
            const std::string name = field.key.Scalar();
            const std::string path = joinPath(section.path, name);
            if (name.empty()) {
                error(field.key_pos, fmt::format("{}: a key must not be empty",
                                                 section.path.empty() ? "top level" : section.path));
                continue;
            }
            if (!allowed.empty() && std::ranges::find(allowed, name) == allowed.end()) {
                unknown(field.key_pos, section.path, name, allowed);
                continue;
            }
            if (const Field* first = section.find(name)) {
                error(field.key_pos, fmt::format("duplicate key '{}' (first given at line {}); "
                                                 "keep only one",
                                                 path, first->key_pos.line));
                continue;
            }
            section.fields.emplace(name, std::move(field));
        }
    }

    void unknown(Pos pos, std::string_view parent, std::string_view name,
                 std::span<const std::string_view> allowed) {
        std::string message = fmt::format("unknown key '{}'", joinPath(parent, name));
        if (const auto suggestion = closest(name, allowed)) {
            message += fmt::format("; did you mean '{}'?", *suggestion);
        } else {
            for (const auto& key : schema::keys()) {
                if (schema::leafName(key.path) == name) {
                    message += fmt::format("; '{}' belongs at '{}'", name, key.path);
                    break;
                }
            }
        }
        message += fmt::format(" (allowed {}: {})",
                               parent.empty() ? std::string("at the top level")
                                              : fmt::format("under '{}'", parent),
                               joinNames(allowed));
        error(pos, std::move(message));
    }

    // The text of a scalar that will be converted to a bool or an integer. A quoted value is a
    // string unless it carries a ${...} reference, whose expansion is then converted.
    std::optional<std::string> scalarForConversion(const Field& field, std::string_view path,
                                                   std::string_view expected) {
        if (!field.value.IsScalar()) {
            error(field.valuePos(),
                  fmt::format("{}: expected {}, got {}", path, expected, describe(field.value)));
            return std::nullopt;
        }
        const std::string& raw = field.value.Scalar();
        if (raw.find('$') != std::string::npos) {
            auto expanded = expand(field, path);
            if (expanded) {
                *expanded = trim(*expanded);
            }
            return expanded;
        }
        if (isQuoted(field.value)) {
            error(field.valuePos(), fmt::format("{}: expected {}, got a string; remove the quotes",
                                                path, expected));
            return std::nullopt;
        }
        return raw;
    }

    std::string file_;
    const EnvLookup& env_;
    std::vector<ConfigError> errors_;
    std::deque<Field> defaults_;  // fields made from the table's defaults; stable addresses
    std::set<std::string_view> used_;
    std::map<std::string, std::pair<int, int>, std::less<>> positions_;
};

void readPostgres(Reader& r, const Section& source, PostgresConfig& out) {
    const Section pg = r.child(source, "postgres");
    if (pg.find("dsn") == nullptr) {
        r.missing(pg, "dsn",
                  "give the libpq connection string, e.g. dsn: \"host=db dbname=app user=outboxd\"");
    } else if (auto dsn = r.dsn(pg, "dsn")) {
        if (trim(*dsn).empty()) {
            r.error(r.valuePos(pg, "dsn"),
                    "source.postgres.dsn: must not be empty; give a libpq connection string or URI");
        } else {
            out.dsn = std::move(*dsn);
        }
    }
    if (auto slot = r.string(pg, "slot")) {
        const bool valid = !slot->empty() && slot->size() <= kMaxIdentifierBytes &&
                           std::ranges::all_of(*slot, [](char c) {
                               return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                           });
        if (!valid) {
            r.error(r.valuePos(pg, "slot"),
                    fmt::format("source.postgres.slot: '{}' is not a valid replication slot name; "
                                "use lower-case letters, digits and underscores (at most {} bytes)",
                                *slot, kMaxIdentifierBytes));
        } else {
            out.slot = std::move(*slot);
        }
    }
    if (auto publication = r.string(pg, "publication")) {
        if (publication->empty() || publication->size() > kMaxIdentifierBytes) {
            r.error(r.valuePos(pg, "publication"),
                    fmt::format("source.postgres.publication: must be a name of 1 to {} bytes",
                                kMaxIdentifierBytes));
        } else {
            out.publication = std::move(*publication);
        }
    }
    if (auto v = r.boolean(pg, "create_slot")) {
        out.create_slot = *v;
    }
    if (auto v = r.boolean(pg, "create_publication")) {
        out.create_publication = *v;
    }
    if (auto v = r.boolean(pg, "failover")) {
        out.failover = *v;
    }
    if (auto v = r.integer(pg, "status_interval_ms")) {
        out.status_interval = std::chrono::milliseconds{*v};
    }
    if (auto v = r.integer(pg, "heartbeat_interval_ms")) {
        out.heartbeat_interval = std::chrono::milliseconds{*v};
    }
    if (auto v = r.integer(pg, "slot_check_interval_ms")) {
        out.slot_check_interval = std::chrono::milliseconds{*v};
    }
}

// The table lists the words (and their order in messages); `values` maps each to its enum.
template <typename E, std::size_t N>
std::optional<E> readEnum(Reader& r, const Section& section, std::string_view name,
                          const std::array<std::pair<std::string_view, E>, N>& values) {
    auto text = r.string(section, name);
    if (!text) {
        return std::nullopt;
    }
    const std::string path = joinPath(section.path, name);
    const std::span<const std::string_view> words = schemaKey(path).choices;
    if (std::ranges::find(words, *text) != words.end()) {
        for (const auto& [word, value] : values) {
            if (*text == word) {
                return value;
            }
        }
        throw std::logic_error(fmt::format("{}: choice '{}' in src/config/schema.cpp has no value",
                                           path, *text));
    }
    std::string message = fmt::format("{}: invalid value '{}'; use one of {}", path, *text,
                                      joinNames(words));
    if (const auto suggestion = closest(*text, words)) {
        message += fmt::format(" (did you mean '{}'?)", *suggestion);
    }
    r.error(r.valuePos(section, name), std::move(message));
    return std::nullopt;
}

// Reads one table name of source.outbox.tables; reports the problem at `pos`.
std::optional<TableName> tableName(Reader& r, const Field& entry, Pos pos) {
    auto text = r.expand(entry, "source.outbox.tables");
    if (!text) {
        return std::nullopt;
    }
    auto parsed = parseQualifiedName(*text);
    if (!parsed) {
        r.error(pos, fmt::format("source.outbox.tables: '{}' is not a table name: {}; write "
                                 "\"schema.table\" or \"table\" (schema public), each part 1 "
                                 "to {} bytes; unquoted names fold to lower case, \"quoted\" ones "
                                 "are kept exactly",
                                 *text, parsed.error(), kMaxIdentifierBytes));
        return std::nullopt;
    }
    return TableName{std::move(parsed->schema), std::move(parsed->name)};
}

std::optional<Template> checkTopic(Reader& r, Pos pos, std::string_view path, const std::string& topic,
                                   const std::optional<common::Regex>& topic_regex, const std::string& regex_text,
                                   bool topic_regex_refused);
std::optional<Template> checkKey(Reader& r, Pos pos, std::string_view path, const std::string& key);

// One map entry of source.outbox.tables: {name, columns, topic, key}.
std::optional<TableName> readTableEntry(Reader& r, const YAML::Node& item, Pos pos, const RoutingConfig& routing,
                                        const std::optional<common::Regex>& topic_regex, bool topic_regex_refused,
                                        TableOverrides& out) {
    static constexpr std::string_view kPath = "source.outbox.tables";
    const std::size_t errors_before = r.errorCount();
    const Section entry = r.entry(kPath, item, pos);
    std::optional<TableName> name;
    if (entry.find("name") == nullptr) {
        r.missing(entry, "name",
                  "name the table, e.g. {name: '\"OutboxMessages\"', columns: {id: '\"Id\"'}, topic: ..., key: ...}");
    } else if (const Field* field = entry.find("name"); !field->value.IsScalar()) {
        r.error(field->valuePos(), fmt::format("{}.name: expected a string \"schema.table\" or \"table\", got {}",
                                               kPath, describe(field->value)));
    } else {
        r.lookup(entry, "name");
        name = tableName(r, *field, field->valuePos());
    }
    const Section columns = r.child(entry, "columns");
    const auto column = [&](std::string_view key, std::optional<std::string>& target) {
        auto value = r.string(columns, key);
        if (!value || value->empty()) {
            return;
        }
        auto parsed = parseIdentifier(*value);
        if (!parsed) {
            r.error(r.valuePos(columns, key), fmt::format("{}.{}: {}", columns.path, key, parsed.error()));
            return;
        }
        target = std::move(*parsed);
    };
    column("id", out.id);
    column("aggregate_type", out.aggregate_type);
    column("aggregate_id", out.aggregate_id);
    column("type", out.type);
    column("payload", out.payload);
    column("timestamp", out.timestamp);
    if (auto topic = r.string(entry, "topic"); topic && !topic->empty()) {
        out.topic = checkTopic(r, r.valuePos(entry, "topic"), "source.outbox.tables.topic", *topic, topic_regex,
                               routing.topic_regex, topic_regex_refused);
    }
    if (auto key = r.string(entry, "key"); key && !key->empty()) {
        out.key = checkKey(r, r.valuePos(entry, "key"), "source.outbox.tables.key", *key);
    }
    if (r.errorCount() != errors_before) {
        return std::nullopt;
    }
    return name;
}

void readTables(Reader& r, const Section& outbox, const RoutingConfig& routing,
                const std::optional<common::Regex>& topic_regex, bool topic_regex_refused, OutboxConfig& out) {
    static constexpr std::string_view kPath = "source.outbox.tables";
    const Field* field = r.lookup(outbox, "tables");
    for (const auto child : childrenOf(kPath)) {
        Section entry;
        entry.path = std::string(kPath);
        if (child == "columns") {
            const Section columns = r.child(entry, child);
            for (const auto leaf : childrenOf(columns.path)) r.lookup(columns, leaf);
        } else {
            r.lookup(entry, child);
        }
    }
    if (field == nullptr) {
        return;
    }
    if (!field->value.IsSequence()) {
        r.error(field->valuePos(),
                fmt::format("source.outbox.tables: expected a list of table names, got {}; write "
                            "tables: [public.outbox]",
                            describe(field->value)));
        return;
    }
    if (field->value.size() == 0) {
        r.error(field->valuePos(),
                "source.outbox.tables: the list is empty; give at least one outbox table, e.g. "
                "[public.outbox]");
        return;
    }
    std::vector<TableName> tables;
    std::map<TableName, TableOverrides> overrides;
    bool all_valid = true;
    for (const auto& item : field->value) {
        Field entry{field->key, item, field->key_pos};
        const Pos pos = entry.valuePos();
        std::optional<TableName> table;
        TableOverrides settings;
        if (item.IsMap()) {
            table = readTableEntry(r, item, pos, routing, topic_regex, topic_regex_refused, settings);
        } else if (!item.IsScalar()) {
            r.error(pos, fmt::format("source.outbox.tables: each entry must be a string "
                                     "\"schema.table\" or \"table\", or a map {{name: ..., columns: {{...}}, "
                                     "topic: ..., key: ...}}, got {}",
                                     describe(item)));
        } else {
            table = tableName(r, entry, pos);
        }
        if (!table) {
            all_valid = false;
            continue;
        }
        if (std::ranges::find(tables, *table) != tables.end()) {
            r.error(pos, fmt::format("source.outbox.tables: '{}.{}' is listed twice; keep only one",
                                     table->schema, table->name));
            all_valid = false;
            continue;
        }
        if (item.IsMap()) {
            overrides.emplace(*table, std::move(settings));
        }
        tables.push_back(std::move(*table));
    }
    if (all_valid) {
        out.tables = std::move(tables);
        out.overrides = std::move(overrides);
    }
}

void readMessages(Reader& r, const Section& outbox, MessagesConfig& out) {
    const Section messages = r.child(outbox, "messages");
    static constexpr std::array<std::pair<std::string_view, NonTransactional>, 2> kPolicies{{
        {"refuse", NonTransactional::Refuse},
        {"accept", NonTransactional::Accept},
    }};
    if (auto v = readEnum(r, messages, "non_transactional", kPolicies)) out.non_transactional = *v;
    const Field* field = r.lookup(messages, "prefixes");
    if (field == nullptr) {
        return;
    }
    if (!field->value.IsSequence()) {
        r.error(field->valuePos(), fmt::format("source.outbox.messages.prefixes: expected a list of prefixes, got {}; "
                                               "write prefixes: [outbox]",
                                               describe(field->value)));
        return;
    }
    std::vector<std::string> prefixes;
    bool all_valid = true;
    for (const auto& item : field->value) {
        Field entry{field->key, item, field->key_pos};
        const Pos pos = entry.valuePos();
        if (!item.IsScalar()) {
            r.error(pos, fmt::format("source.outbox.messages.prefixes: each entry must be a string, got {}",
                                     describe(item)));
            all_valid = false;
            continue;
        }
        auto text = r.expand(entry, "source.outbox.messages.prefixes");
        if (!text) {
            all_valid = false;
            continue;
        }
        if (text->empty()) {
            r.error(pos, "source.outbox.messages.prefixes: a prefix must not be empty (PostgreSQL refuses an empty "
                         "prefix in pg_logical_emit_message)");
            all_valid = false;
            continue;
        }
        if (*text == "outboxd.heartbeat") {
            r.error(pos, "source.outbox.messages.prefixes: 'outboxd.heartbeat' is the prefix of outboxd's own "
                         "heartbeat messages; use another prefix for events");
            all_valid = false;
            continue;
        }
        if (std::ranges::find(prefixes, *text) != prefixes.end()) {
            r.error(pos, fmt::format("source.outbox.messages.prefixes: '{}' is listed twice; keep only one", *text));
            all_valid = false;
            continue;
        }
        prefixes.push_back(std::move(*text));
    }
    if (all_valid) {
        out.prefixes = std::move(prefixes);
    }
}

void readColumns(Reader& r, const Section& outbox, OutboxColumns& out) {
    const Section columns = r.child(outbox, "columns");
    const auto read = [&](std::string_view name, std::string& target, bool may_be_empty) {
        auto value = r.string(columns, name);
        if (!value) {
            return;
        }
        if (value->empty() && !may_be_empty) {
            r.error(r.valuePos(columns, name),
                    fmt::format("{}.{}: a column name must not be empty; remove the key to use "
                                "the default",
                                columns.path, name));
            return;
        }
        if (value->empty()) {
            target.clear();
            return;
        }
        auto column = parseIdentifier(*value);
        if (!column) {
            r.error(r.valuePos(columns, name), fmt::format("{}.{}: {}", columns.path, name, column.error()));
            return;
        }
        target = std::move(*column);
    };
    read("id", out.id, false);
    read("aggregate_type", out.aggregate_type, false);
    read("aggregate_id", out.aggregate_id, false);
    read("type", out.type, false);
    read("payload", out.payload, false);
    read("timestamp", out.timestamp, true);
}

bool isTopicChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}


// What is wrong with the {$group} placeholders of routing.topic, if anything.
std::optional<std::string> topicGroupProblem(const Template& topic, const common::Regex* regex,
                                             std::string_view regex_text) {
    for (const auto& part : topic.parts) {
        if (!part.is_group) continue;
        if (regex == nullptr) {
            return fmt::format("routing.topic: {{${}}} names a regex group, but routing.topic_regex is not set; set it "
                               "(e.g. \"(?<routedByValue>.*)\") or use {{column}} placeholders",
                               part.text);
        }
        if (!regex->group(part.text)) {
            return fmt::format("routing.topic: {{${}}} is not a group of routing.topic_regex \"{}\"; name one of its "
                               "groups, as (?<name>...) or by number",
                               part.text, regex_text);
        }
    }
    return std::nullopt;
}

void readAdditionalFields(Reader& r, const Section& routing, std::vector<AdditionalField>& out) {
    static constexpr std::string_view kPath = "routing.additional_fields";
    static constexpr std::string_view kShape =
        "{column: C, placement: header|envelope|partition, as: ALIAS}";
    static constexpr std::array<std::pair<std::string_view, Placement>, 3> kPlacementValues{{
        {"header", Placement::Header},
        {"envelope", Placement::Envelope},
        {"partition", Placement::Partition},
    }};
    // A header field may take the name of outboxd's own type, aggregate_type or content-type header
    // (Debezium's documented example puts eventType in a header named type): the field's value
    // replaces outboxd's. The id header is the event id and keeps it.
    const Field* field = r.lookup(routing, "additional_fields");
    for (const auto child : childrenOf(kPath)) {
        r.lookup(Section{.path = std::string(kPath), .anchor = {}, .broken = false, .fields = {}}, child);
    }
    if (field == nullptr || field->value.IsNull()) {
        return;
    }
    if (!field->value.IsSequence()) {
        r.error(field->valuePos(), fmt::format("{}: expected a list of {} maps, got {}; write additional_fields: "
                                               "[{{column: tracingspancontext, placement: header, as: traceparent}}]",
                                               kPath, kShape, describe(field->value)));
        return;
    }
    std::vector<AdditionalField> fields;
    std::vector<int> lines;
    bool all_valid = true;
    for (const auto& item : field->value) {
        Field entry_field{field->key, item, field->key_pos};
        const Pos pos = entry_field.valuePos();
        if (!item.IsMap()) {
            r.error(pos, fmt::format("{}: each entry must be a map {}, got {}", kPath, kShape, describe(item)));
            all_valid = false;
            continue;
        }
        const std::size_t errors_before = r.errorCount();
        const Section entry = r.entry(kPath, item, pos);
        AdditionalField af;
        if (entry.find("column") == nullptr) {
            r.missing(entry, "column", fmt::format("name the outbox table's column, e.g. {}", kShape));
        } else if (auto text = r.string(entry, "column")) {
            if (auto column = parseIdentifier(*text)) {
                af.column = std::move(*column);
            } else {
                r.error(r.valuePos(entry, "column"), fmt::format("{}.column: {}", kPath, column.error()));
            }
        }
        if (entry.find("placement") == nullptr) {
            r.missing(entry, "placement", "say where the column goes: header, envelope or partition");
        } else if (auto placement = readEnum(r, entry, "placement", kPlacementValues)) {
            af.placement = *placement;
        }
        if (auto alias = r.string(entry, "as")) {
            af.alias = alias->empty() ? af.column : std::move(*alias);
        }
        if (r.errorCount() != errors_before) {
            all_valid = false;
            continue;
        }
        const Pos alias_pos = entry.find("as") != nullptr ? r.valuePos(entry, "as") : pos;
        if (af.placement == Placement::Header && af.alias == "id") {
            r.error(alias_pos, fmt::format("{}: header 'id' is one outboxd sets itself, to the event id; give the "
                                           "field another name with `as`",
                                           kPath));
            all_valid = false;
            continue;
        }
        if (af.placement == Placement::Envelope && af.alias == "payload") {
            r.error(alias_pos, fmt::format("{}: envelope member 'payload' holds the payload itself; give the field "
                                           "another name with `as`",
                                           kPath));
            all_valid = false;
            continue;
        }
        bool clash = false;
        for (std::size_t i = 0; i < fields.size(); ++i) {
            const auto& other = fields[i];
            if (af.placement == Placement::Partition && other.placement == Placement::Partition) {
                r.error(pos, fmt::format("{}: a second partition field ('{}'; the first, '{}', is at line {}); a "
                                         "record has one partition, keep one",
                                         kPath, af.column, other.column, lines[i]));
                clash = true;
                break;
            }
            if (af.placement != Placement::Partition && other.placement == af.placement && other.alias == af.alias) {
                r.error(alias_pos, fmt::format("{}: two {} fields are named '{}' (the first at line {}); give one "
                                               "another name with `as`",
                                               kPath, af.placement == Placement::Header ? "header" : "envelope",
                                               af.alias, lines[i]));
                clash = true;
                break;
            }
        }
        if (clash) {
            all_valid = false;
            continue;
        }
        fields.push_back(std::move(af));
        lines.push_back(pos.line);
    }
    if (all_valid) {
        out = std::move(fields);
    }
}

// A topic template (routing.topic, or a table's own topic at `path`): its placeholders, its
// {$group}s against routing.topic_regex, and the characters and length Kafka allows.
std::optional<Template> checkTopic(Reader& r, Pos pos, std::string_view path, const std::string& topic,
                                   const std::optional<common::Regex>& topic_regex, const std::string& regex_text,
                                   bool topic_regex_refused) {
    auto parsed = parseTemplate(topic);
    if (!parsed) {
        r.error(pos, fmt::format("{}: {}", path, parsed.error()));
        return std::nullopt;
    }
    if (!topic_regex_refused) {
        if (auto problem = topicGroupProblem(*parsed, topic_regex ? &*topic_regex : nullptr, regex_text)) {
            r.error(pos, fmt::format("{}{}", path, problem->substr(std::string_view("routing.topic").size())));
            return std::nullopt;
        }
    }
    std::size_t literal_bytes = 0;
    for (const auto& part : parsed->parts) {
        if (part.is_column || part.is_group) {
            continue;
        }
        literal_bytes += part.text.size();
        if (!std::ranges::all_of(part.text, isTopicChar)) {
            r.error(pos, fmt::format("{}: \"{}\" has characters a Kafka topic name cannot hold; outside "
                                     "placeholders use only letters, digits, '.', '_' and '-'",
                                     path, topic));
            return std::nullopt;
        }
    }
    if (literal_bytes > kMaxTopicBytes) {
        r.error(pos, fmt::format("{}: longer than the {} bytes Kafka allows for a topic name", path,
                                 kMaxTopicBytes));
        return std::nullopt;
    }
    return std::move(*parsed);
}

// A key template (routing.key, or a table's own key at `path`): {column} placeholders only.
std::optional<Template> checkKey(Reader& r, Pos pos, std::string_view path, const std::string& key) {
    auto parsed = parseTemplate(key);
    if (!parsed) {
        r.error(pos, fmt::format("{}: {}", path, parsed.error()));
        return std::nullopt;
    }
    if (std::ranges::any_of(parsed->parts, &Template::Part::is_group)) {
        r.error(pos, fmt::format("{}: {{$group}} placeholders belong in routing.topic only; use {{column}} "
                                 "placeholders",
                                 path));
        return std::nullopt;
    }
    return std::move(*parsed);
}

void readRouting(Reader& r, const Section& root, RoutingConfig& out, std::optional<common::Regex>& topic_regex,
                 bool& topic_regex_refused) {
    const Section routing = r.child(root, "routing");
    topic_regex_refused = false;
    if (auto regex = r.string(routing, "topic_regex"); regex && !regex->empty()) {
        auto compiled = common::Regex::compile(*regex);
        if (!compiled) {
            r.error(r.valuePos(routing, "topic_regex"),
                    fmt::format("routing.topic_regex: {}; it is matched against the whole aggregate_type value, "
                                "as Debezium's route.topic.regex",
                                compiled.error()));
            topic_regex_refused = true;
        } else {
            topic_regex.emplace(std::move(*compiled));
            out.topic_regex = *regex;
        }
    }
    if (auto topic = r.string(routing, "topic")) {
        const Pos pos = r.valuePos(routing, "topic");
        if (topic->empty()) {
            r.error(pos, fmt::format("routing.topic: must not be empty; the default is {}",
                                     schemaKey("routing.topic").default_yaml));
        } else if (auto parsed = checkTopic(r, pos, "routing.topic", *topic, topic_regex, out.topic_regex,
                                            topic_regex_refused)) {
            out.topic = std::move(*parsed);
        }
    }
    if (auto key = r.string(routing, "key")) {
        if (auto parsed = checkKey(r, r.valuePos(routing, "key"), "routing.key", *key)) {
            out.key = std::move(*parsed);
        }
    }
    static constexpr std::array<std::pair<std::string_view, ValueMode>, 2> kValueModes{{
        {"envelope", ValueMode::Envelope},
        {"payload", ValueMode::Payload},
    }};
    if (auto v = readEnum(r, routing, "value", kValueModes)) out.value = *v;
    if (auto v = r.boolean(routing, "tombstone_on_empty_payload")) out.tombstone_on_empty_payload = *v;
    static constexpr std::array<std::pair<std::string_view, OnUpdate>, 3> kOnUpdate{{
        {"warn", OnUpdate::Warn},
        {"error", OnUpdate::Error},
        {"fatal", OnUpdate::Fatal},
    }};
    if (auto v = readEnum(r, routing, "on_update", kOnUpdate)) out.on_update = *v;
    readAdditionalFields(r, routing, out.additional_fields);
    static constexpr std::array<std::pair<std::string_view, HeaderEncoding>, 2> kHeaderEncodings{{
        {"bare", HeaderEncoding::Bare},
        {"json", HeaderEncoding::Json},
    }};
    if (auto v = readEnum(r, routing, "header_encoding", kHeaderEncodings)) out.header_encoding = *v;
    if (auto v = r.boolean(routing, "expand_json_payload")) {
        if (*v && out.value != ValueMode::Payload) {
            r.error(r.valuePos(routing, "expand_json_payload"),
                    "routing.expand_json_payload: applies to routing.value: payload only (in the envelope the payload "
                    "is bytes); set value: payload, or remove the key");
        } else {
            out.expand_json_payload = *v;
        }
    }
}

void readProperties(Reader& r, const Section& kafka, std::map<std::string, std::string>& out) {
    const Section props = r.freeMap(kafka, "properties");
    for (const auto& [name, field] : props.fields) {
        const std::string path = joinPath(props.path, name);
        if (!field.value.IsScalar()) {
            r.error(field.valuePos(),
                    fmt::format("{}: expected a scalar value (string, number or bool), got {}",
                                path, describe(field.value)));
            continue;
        }
        auto value = r.expand(field, path);
        if (!value) {
            continue;
        }
        if (auto problem = checkProducerProperty(name, *value)) {
            r.error(problem->at_key ? field.key_pos : field.valuePos(), std::move(problem->message));
            continue;
        }
        r.record(path, field.valuePos());
        out.emplace(name, std::move(*value));
    }
}

void readKafka(Reader& r, const Section& root, KafkaConfig& out) {
    const Section sink = r.child(root, "sink");
    const Section kafka = r.child(sink, "kafka");
    if (kafka.find("brokers") == nullptr) {
        r.missing(kafka, "brokers", "give the bootstrap brokers, e.g. brokers: \"kafka:9092\"");
    } else if (auto brokers = r.string(kafka, "brokers")) {
        if (auto problem = checkBrokers(*brokers)) {
            r.error(r.valuePos(kafka, "brokers"), fmt::format("sink.kafka.brokers: {}", *problem));
        } else {
            out.brokers = std::move(*brokers);
        }
    }
    readProperties(r, kafka, out.properties);
    if (auto v = r.integer(kafka, "shutdown_timeout_ms")) {
        out.shutdown_timeout = std::chrono::milliseconds{*v};
    }
    static constexpr std::array<std::pair<std::string_view, Delivery>, 2> kDeliveries{{
        {"at-least-once", Delivery::AtLeastOnce},
        {"exactly-once", Delivery::ExactlyOnce},
    }};
    if (auto v = readEnum(r, kafka, "delivery", kDeliveries)) out.delivery = *v;
    if (auto v = r.string(kafka, "transactional_id")) out.transactional_id = std::move(*v);
    if (auto v = r.string(kafka, "checkpoint_topic")) {
        if (v->empty()) {
            r.error(r.valuePos(kafka, "checkpoint_topic"),
                    "sink.kafka.checkpoint_topic: give a topic name (or leave the key out for outboxd.checkpoints)");
        } else {
            out.checkpoint_topic = std::move(*v);
        }
    }
    if (auto v = r.integer(kafka, "transaction_interval_ms")) out.transaction_interval = std::chrono::milliseconds{*v};
    if (auto v = r.integer(kafka, "transaction_max_events")) out.transaction_max_events = *v;
}

// Empty when `listen` is acceptable, else what is wrong with it.
std::optional<std::string> checkListen(std::string_view listen) {
    if (listen.empty()) {
        return std::nullopt;
    }
    std::string_view host;
    std::string_view port;
    if (listen.starts_with('[')) {
        const auto close = listen.find(']');
        if (close == std::string_view::npos || close + 1 >= listen.size() ||
            listen[close + 1] != ':') {
            return "an IPv6 address is written \"[addr]:port\", e.g. \"[::]:9898\"";
        }
        host = listen.substr(1, close - 1);
        port = listen.substr(close + 2);
        const bool hex = std::ranges::all_of(host, [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
        });
        if (host.empty() || !hex) {
            return "the address between brackets is not an IPv6 address";
        }
    } else {
        const auto colon = listen.rfind(':');
        if (colon == std::string_view::npos) {
            return "expected \"host:port\", e.g. \"0.0.0.0:9898\", or \"\" to disable the endpoint";
        }
        host = listen.substr(0, colon);
        port = listen.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return "write an IPv6 address in brackets, e.g. \"[::]:9898\"";
        }
        const bool plain = std::ranges::all_of(host, [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
                   c == '_';
        });
        if (host.empty() || !plain) {
            return "the host must be a name or an address, e.g. \"0.0.0.0:9898\" for every "
                   "interface";
        }
    }
    const bool digits = !port.empty() && port.size() <= 5 &&
                        std::ranges::all_of(port, [](char c) { return c >= '0' && c <= '9'; });
    const auto number = digits ? parseInteger(port) : std::nullopt;
    if (!number || *number < 1 || *number > 65535) {
        return "the port must be a number from 1 to 65535";
    }
    return std::nullopt;
}

void readMetrics(Reader& r, const Section& root, MetricsConfig& out) {
    const Section metrics = r.child(root, "metrics");
    if (auto listen = r.string(metrics, "listen")) {
        if (auto problem = checkListen(*listen)) {
            r.error(r.valuePos(metrics, "listen"),
                    fmt::format("metrics.listen: '{}': {}", *listen, *problem));
        } else {
            out.listen = std::move(*listen);
        }
    }
}


void readLog(Reader& r, const Section& root, LogConfig& out) {
    static constexpr std::array<std::pair<std::string_view, LogLevel>, 5> kLevels{{
        {"trace", LogLevel::Trace},
        {"debug", LogLevel::Debug},
        {"info", LogLevel::Info},
        {"warn", LogLevel::Warn},
        {"error", LogLevel::Error},
    }};
    static constexpr std::array<std::pair<std::string_view, LogFormat>, 2> kFormats{{
        {"text", LogFormat::Text},
        {"json", LogFormat::Json},
    }};
    const Section log = r.child(root, "log");
    if (auto level = readEnum(r, log, "level", kLevels)) {
        out.level = *level;
    }
    if (auto format = readEnum(r, log, "format", kFormats)) {
        out.format = *format;
    }
}

void readPayload(Reader& r, const Section& root, PayloadConfig& out) {
    static constexpr std::array<std::pair<std::string_view, UnknownFields>, 2> kUnknown{{
        {"fail", UnknownFields::Fail},
        {"ignore", UnknownFields::Ignore},
    }};
    static constexpr std::array<std::pair<std::string_view, Untyped>, 2> kUntypedValues{{
        {"pass", Untyped::Pass},
        {"fail", Untyped::Fail},
    }};
    const Section payload = r.child(root, "payload");
    const Section protobuf = r.child(payload, "protobuf");
    auto& pb = out.protobuf;
    if (auto set = r.string(protobuf, "descriptor_set")) {
        pb.descriptor_set = std::move(*set);
        const Pos pos = r.valuePos(protobuf, "descriptor_set");
        pb.line = pos.line;
        pb.column = pos.column;
    }
    const Section types = r.freeMap(protobuf, "types", "event types to protobuf message full names");
    for (const auto& [name, field] : types.fields) {
        const std::string path = joinPath(types.path, name);
        if (!field.value.IsScalar() || field.value.Scalar().empty()) {
            r.error(field.valuePos(), fmt::format("{}: expected a message full name, e.g. "
                                                  "playball.auth.v1.UserRegistered, got {}",
                                                  path, describe(field.value)));
            continue;
        }
        pb.types.emplace(name, field.value.Scalar());
    }
    if (auto v = readEnum(r, protobuf, "unknown_fields", kUnknown)) pb.unknown_fields = *v;
    if (auto v = readEnum(r, protobuf, "untyped", kUntypedValues)) pb.untyped = *v;
    if (pb.descriptor_set.empty() && !pb.types.empty()) {
        r.error(types.anchor, "payload.protobuf.types needs payload.protobuf.descriptor_set: give the "
                              "FileDescriptorSet that defines these messages");
    }
}

void readInvalidRows(Reader& r, const Section& root, InvalidRowsConfig& out) {
    static constexpr std::array<std::pair<std::string_view, InvalidRowAction>, 2> kActions{{
        {"fail", InvalidRowAction::Fail},
        {"dead-letter", InvalidRowAction::DeadLetter},
    }};
    const Section rows = r.child(root, "invalid_rows");
    if (auto v = readEnum(r, rows, "action", kActions)) out.action = *v;
    if (auto topic = r.string(rows, "dead_letter_topic")) {
        const bool valid = !topic->empty() && topic->size() <= 249 && *topic != "." && *topic != ".." &&
                           std::ranges::all_of(*topic, [](char c) {
                               return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' ||
                                      c == '-';
                           });
        if (!valid) {
            r.error(r.valuePos(rows, "dead_letter_topic"),
                    fmt::format("invalid_rows.dead_letter_topic: '{}' is not a valid Kafka topic name (1 to 249 of "
                                "a-z A-Z 0-9 . _ -)",
                                *topic));
        } else {
            out.dead_letter_topic = std::move(*topic);
        }
    }
}

std::expected<Config, std::vector<ConfigError>> parseDocument(Reader& r, const YAML::Node& doc) {
    Config config;
    const Section root = r.root(doc);
    const Section source = r.child(root, "source");
    readPostgres(r, source, config.postgres);
    const Section outbox = r.child(source, "outbox");
    std::optional<common::Regex> topic_regex;
    bool topic_regex_refused = false;
    readRouting(r, root, config.routing, topic_regex, topic_regex_refused);
    readTables(r, outbox, config.routing, topic_regex, topic_regex_refused, config.outbox);
    readColumns(r, outbox, config.outbox.columns);
    readMessages(r, outbox, config.outbox.messages);
    readKafka(r, root, config.kafka);
    readMetrics(r, root, config.metrics);
    readLog(r, root, config.log);
    readPayload(r, root, config.payload);
    readInvalidRows(r, root, config.invalid_rows);
    r.checkEveryKeyRead();
    if (!r.ok()) {
        return std::unexpected(r.takeErrors());
    }
    config.file = r.file();
    config.positions = r.takePositions();
    return config;
}

}  // namespace

TableRouting tableRouting(const Config& config, const TableName& table) {
    TableRouting out{config.outbox.columns, &config.routing.topic, &config.routing.key};
    const auto it = config.outbox.overrides.find(table);
    if (it == config.outbox.overrides.end()) {
        return out;
    }
    const TableOverrides& o = it->second;
    const auto take = [](const std::optional<std::string>& value, std::string& target) {
        if (value) target = *value;
    };
    take(o.id, out.columns.id);
    take(o.aggregate_type, out.columns.aggregate_type);
    take(o.aggregate_id, out.columns.aggregate_id);
    take(o.type, out.columns.type);
    take(o.payload, out.columns.payload);
    take(o.timestamp, out.columns.timestamp);
    if (o.topic) out.topic = &*o.topic;
    if (o.key) out.key = &*o.key;
    return out;
}

std::string ConfigError::toString() const {
    if (line <= 0) {
        return fmt::format("{}: {}", file, message);
    }
    if (column <= 0) {
        return fmt::format("{}:{}: {}", file, line, message);
    }
    return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

EnvLookup processEnv() {
    return [](std::string_view name) -> std::optional<std::string> {
        const std::string key(name);
        const char* value = std::getenv(key.c_str());
        if (value == nullptr) {
            return std::nullopt;
        }
        return std::string(value);
    };
}

bool isSecretKey(std::string_view name) {
    const std::string lowered = toLower(name);
    static constexpr std::array<std::string_view, 5> kWords{"password", "secret", "key", "token",
                                                            "credential"};
    return lowered == "dsn" || lowered.ends_with(".dsn") ||
           std::ranges::any_of(kWords, [&](std::string_view w) {
               return lowered.find(w) != std::string::npos;
           });
}

namespace {

// Appends the value of one ${...} reference; `rest` is the text after the reference.
using AppendValue = std::function<void(std::string& out, std::string_view value, std::string_view rest)>;

std::expected<std::string, std::string> expandWith(std::string_view text, const EnvLookup& env,
                                                   const AppendValue& append) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c != '$' || i + 1 >= text.size() || (text[i + 1] != '$' && text[i + 1] != '{')) {
            out += c;
            ++i;
            continue;
        }
        if (text[i + 1] == '$') {
            out += '$';
            i += 2;
            continue;
        }
        const auto close = text.find('}', i + 2);
        if (close == std::string_view::npos) {
            return std::unexpected(
                std::string("unterminated '${': close it with '}', or write '$$' for a literal '$'"));
        }
        const std::string_view inner = text.substr(i + 2, close - i - 2);
        const auto sep = inner.find(":-");
        const std::string_view name = inner.substr(0, sep);
        if (!isIdentifier(name)) {
            return std::unexpected(fmt::format(
                "'${{{}}}' is not a variable reference: a name is letters, digits and '_', not "
                "starting with a digit; write '$$' for a literal '$'",
                sep == std::string_view::npos ? std::string_view("...") : name));
        }
        std::optional<std::string> value;
        if (env) {
            value = env(name);
        }
        if (sep != std::string_view::npos) {
            if (!value || value->empty()) {
                value = std::string(inner.substr(sep + 2));
            }
        } else if (!value) {
            return std::unexpected(
                fmt::format("environment variable '{}' is not set; export it, or give a default "
                            "with ${{{}:-default}}",
                            name, name));
        }
        append(out, *value, text.substr(close + 1));
        i = close + 1;
    }
    return out;
}

// Where libpq's key=value parser (conninfo_parse in fe-connect.c) is at the end of `s`.
enum class DsnPlace { Key, ValueStart, Unquoted, Quoted };

DsnPlace dsnPlace(std::string_view s) {
    DsnPlace place = DsnPlace::Key;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
        switch (place) {
            case DsnPlace::Key:
                if (c == '=') place = DsnPlace::ValueStart;
                break;
            case DsnPlace::ValueStart:
                if (space) break;
                if (c == '\'') {
                    place = DsnPlace::Quoted;
                } else {
                    if (c == '\\') ++i;
                    place = DsnPlace::Unquoted;
                }
                break;
            case DsnPlace::Unquoted:
                if (space) {
                    place = DsnPlace::Key;
                } else if (c == '\\') {
                    ++i;
                }
                break;
            case DsnPlace::Quoted:
                if (c == '\\') {
                    ++i;
                } else if (c == '\'') {
                    place = DsnPlace::Key;
                }
                break;
        }
    }
    return place;
}

}  // namespace

std::expected<std::string, std::string> expandEnv(std::string_view text, const EnvLookup& env) {
    return expandWith(text, env, [](std::string& out, std::string_view value, std::string_view) {
        out += value;
    });
}

std::expected<std::string, std::string> expandDsn(std::string_view text, const EnvLookup& env) {
    const std::string head = toLower(trim(text.substr(0, 16)));
    if (head.starts_with("postgresql://") || head.starts_with("postgres://")) {
        return expandEnv(text, env);
    }
    return expandWith(text, env, [](std::string& out, std::string_view value, std::string_view rest) {
        const DsnPlace place = dsnPlace(out);
        if (place == DsnPlace::Quoted) {
            for (const char c : value) {
                if (c == '\'' || c == '\\') out += '\\';
                out += c;
            }
            return;
        }
        // At the very end libpq reads "key=" as empty; before more options it would take the next
        // word as the value.
        const bool alone = !rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())) != 0;
        if (value.empty() && place == DsnPlace::ValueStart && alone) {
            out += "''";
            return;
        }
        for (const char c : value) {
            if (c == '\'' || c == '\\' || std::isspace(static_cast<unsigned char>(c)) != 0) out += '\\';
            out += c;
        }
    });
}

namespace {

constexpr std::array<std::string_view, 6> kKeyedPartitioners{
    "murmur2_random", "murmur2", "consistent_random", "consistent", "fnv1a_random", "fnv1a"};

}  // namespace

std::span<const std::string_view> keyedPartitioners() {
    return kKeyedPartitioners;
}

std::optional<PropertyProblem> checkProducerProperty(std::string_view name, std::string_view value) {
    const std::string path = fmt::format("sink.kafka.properties.{}", name);
    const std::string lowered = toLower(value);
    if (name == "bootstrap.servers" || name == "metadata.broker.list") {
        return PropertyProblem{fmt::format("{}: set the brokers with sink.kafka.brokers instead, and "
                                           "remove this property",
                                           path),
                               true};
    }
    if (name == "transactional.id") {
        return PropertyProblem{
            fmt::format("{}: outboxd sets the transactional id itself: remove this property, and for "
                        "Kafka transactions set sink.kafka.delivery: exactly-once (and, to choose the id, "
                        "sink.kafka.transactional_id)",
                        path),
            true};
    }
    if (name == "enable.idempotence" && lowered != "true") {
        return PropertyProblem{fmt::format("{}: outboxd needs the idempotent producer (without it a "
                                           "retried send can reorder or duplicate events); remove "
                                           "this property or set it to true",
                                           path)};
    }
    if ((name == "acks" || name == "request.required.acks") && lowered != "all" && value != "-1") {
        return PropertyProblem{fmt::format("{}: outboxd needs acks=all so that no acknowledged event "
                                           "is lost; remove this property or set it to all",
                                           path)};
    }
    if (name == "delivery.report.only.error" && lowered != "false") {
        return PropertyProblem{fmt::format("{}: must stay false: outboxd confirms the slot from the "
                                           "acknowledgements; remove this property",
                                           path)};
    }
    if (name == "partitioner" && std::ranges::find(kKeyedPartitioners, value) == kKeyedPartitioners.end()) {
        return PropertyProblem{fmt::format(
            "{}: '{}' is not a partitioner that sends every event of a key to one partition, so "
            "per-key order could break; use one of {} (outboxd's default is murmur2_random, the "
            "Java client's)",
            path, value, joinNames(kKeyedPartitioners))};
    }
    return std::nullopt;
}

std::optional<std::string> checkBrokers(std::string_view brokers) {
    static constexpr std::array<std::string_view, 4> kProtocols{"plaintext://", "ssl://",
                                                                "sasl_plaintext://", "sasl_ssl://"};
    const auto entries_hint = "give a comma-separated list of host:port without empty entries, "
                              "e.g. \"kafka-1:9092,kafka-2:9092\"";
    if (trim(brokers).empty()) {
        return std::string(entries_hint);
    }
    std::string_view rest = brokers;
    while (true) {
        const auto comma = rest.find(',');
        const std::string entry = trim(rest.substr(0, comma));
        if (entry.empty()) {
            return std::string(entries_hint);
        }
        std::string_view hostport = entry;
        if (const auto scheme = hostport.find("://"); scheme != std::string_view::npos) {
            const std::string prefix = toLower(hostport.substr(0, scheme + 3));
            if (std::ranges::find(kProtocols, prefix) == kProtocols.end()) {
                return fmt::format("'{}': the prefix before '://' must be PLAINTEXT, SSL, "
                                   "SASL_PLAINTEXT or SASL_SSL (or none)",
                                   entry);
            }
            hostport.remove_prefix(scheme + 3);
        }
        std::string_view host;
        std::string_view port;
        if (hostport.starts_with('[')) {
            const auto close = hostport.find(']');
            if (close == std::string_view::npos || close + 1 >= hostport.size() ||
                hostport[close + 1] != ':') {
                return fmt::format("'{}': an IPv6 broker is written \"[addr]:port\"", entry);
            }
            host = hostport.substr(1, close - 1);
            port = hostport.substr(close + 2);
        } else {
            const auto colon = hostport.rfind(':');
            if (colon == std::string_view::npos) {
                return fmt::format("'{}': give the port too, host:port, e.g. \"kafka-1:9092\"", entry);
            }
            host = hostport.substr(0, colon);
            port = hostport.substr(colon + 1);
            if (host.find(':') != std::string_view::npos) {
                return fmt::format("'{}': write an IPv6 address in brackets, e.g. \"[::1]:9092\"", entry);
            }
        }
        const bool plain = !host.empty() && std::ranges::all_of(host, [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
                   c == '_' || c == ':';
        });
        if (!plain) {
            return fmt::format("'{}': the host must be a name or an address", entry);
        }
        const bool digits = !port.empty() && port.size() <= 5 &&
                            std::ranges::all_of(port, [](char c) { return c >= '0' && c <= '9'; });
        const auto number = digits ? parseInteger(port) : std::nullopt;
        if (!number || *number < 1 || *number > 65535) {
            return fmt::format("'{}': the port must be a number from 1 to 65535", entry);
        }
        if (comma == std::string_view::npos) {
            return std::nullopt;
        }
        rest.remove_prefix(comma + 1);
    }
}

ConfigError Config::errorAt(std::string_view path, std::string message) const {
    const auto it = positions.find(path);
    if (it == positions.end()) {
        return ConfigError{file, 0, 0, std::move(message)};
    }
    return ConfigError{file, it->second.first, it->second.second, std::move(message)};
}

std::expected<Template, std::string> parseTemplate(std::string_view text) {
    Template result;
    result.source = std::string(text);
    std::string literal;
    const auto flush = [&] {
        if (!literal.empty()) {
            result.parts.push_back(Template::Part{false, std::move(literal)});
            literal.clear();
        }
    };
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
            literal += '{';
            i += 2;
            continue;
        }
        if (c == '}') {
            if (i + 1 < text.size() && text[i + 1] == '}') {
                literal += '}';
                i += 2;
                continue;
            }
            return std::unexpected(fmt::format(
                "unmatched '}}' at character {}; write '}}}}' for a literal brace", i + 1));
        }
        if (c != '{') {
            literal += c;
            ++i;
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '$') {
            const auto close = text.find('}', i + 2);
            const std::string_view group =
                close == std::string_view::npos ? std::string_view{} : text.substr(i + 2, close - i - 2);
            const bool number = !group.empty() && std::ranges::all_of(group, [](char g) { return g >= '0' && g <= '9'; });
            const bool name = !group.empty() && std::isalpha(static_cast<unsigned char>(group.front())) != 0 &&
                              std::ranges::all_of(group, [](char g) { return std::isalnum(static_cast<unsigned char>(g)) != 0; });
            if (!number && !name) {
                return std::unexpected(fmt::format(
                    "placeholder at character {} is not a regex group; write {{$name}} (letters and digits, as in "
                    "(?<name>...)) or {{$1}}, closed with '}}'",
                    i + 1));
            }
            flush();
            result.parts.push_back(Template::Part{false, std::string(group), true});
            i = close + 1;
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '"') {
            auto quoted = readIdentifier(text.substr(i + 1), "");
            const std::size_t after = i + 1 + (quoted ? quoted->used : 0);
            if (!quoted) {
                return std::unexpected(fmt::format("placeholder at character {}: {}", i + 1, quoted.error()));
            }
            if (after >= text.size() || text[after] != '}') {
                return std::unexpected(fmt::format(
                    "placeholder at character {}: close it with '}}' right after the quoted name", i + 1));
            }
            flush();
            result.parts.push_back(Template::Part{true, std::move(quoted->name)});
            i = after + 1;
            continue;
        }
        const auto close = text.find_first_of("{}", i + 1);
        if (close == std::string_view::npos || text[close] == '{') {
            return std::unexpected(fmt::format(
                "unmatched '{{' at character {}; close the placeholder with '}}', or write '{{{{' "
                "for a literal brace",
                i + 1));
        }
        const std::string_view name = text.substr(i + 1, close - i - 1);
        if (name.empty()) {
            return std::unexpected(fmt::format(
                "empty placeholder '{{}}' at character {}; put a column name between the braces",
                i + 1));
        }
        if (!isIdentifier(name) || name.size() > kMaxIdentifierBytes) {
            return std::unexpected(fmt::format(
                "placeholder at character {} is not a column name; use letters, digits and '_', "
                "not starting with a digit, or a double-quoted name such as {{\"AggregateType\"}}",
                i + 1));
        }
        flush();
        result.parts.push_back(Template::Part{true, toLower(name)});
        i = close + 1;
    }
    flush();
    return result;
}

namespace {

// Counts the documents of a YAML stream and remembers where the second one starts.
struct DocumentCounter final : YAML::EventHandler {
    int documents = 0;
    YAML::Mark second = YAML::Mark::null_mark();
    void OnDocumentStart(const YAML::Mark& mark) override {
        if (++documents == 2) second = mark;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// yaml-cpp 0.7 can spin for minutes and grow without bound on invalid UTF-8 (found by
// fuzz/config_fuzz), so the text is checked before it reaches the parser. Returns the 1-based
// line and column of the first byte that is not UTF-8 (RFC 3629), or of a NUL.
std::optional<std::pair<int, int>> firstInvalidUtf8(std::string_view text) {
    int line = 1;
    int column = 1;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c == 0) return std::make_pair(line, column);
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return std::make_pair(line, column);
        }
        if (i + len > text.size()) return std::make_pair(line, column);
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(text[i + k]);
            if ((cc & 0xC0) != 0x80) return std::make_pair(line, column);
            cp = (cp << 6) | (cc & 0x3F);
        }
        const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::make_pair(line, column);
        if (c == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
        i += len;
    }
    return std::nullopt;
}

}  // namespace

std::expected<Config, std::vector<ConfigError>> parseConfig(std::string_view yaml,
                                                            std::string_view file,
                                                            const EnvLookup& env) {
    if (auto bad = firstInvalidUtf8(yaml)) {
        return std::unexpected(std::vector<ConfigError>{ConfigError{
            std::string(file), bad->first, bad->second,
            "this byte is not UTF-8 text (or is a NUL); save the configuration as UTF-8"}});
    }
    Reader reader(file, env);
    try {
        const std::string text(yaml);
        // Documents are counted with a bounded loop: yaml-cpp 0.7's LoadAll never ends on a
        // stray ',' (found by fuzz/config_fuzz), because each call yields another empty document.
        DocumentCounter counter;
        {
            std::istringstream in(text);
            YAML::Parser parser(in);
            for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
            }
        }
        if (counter.documents == 0) {
            reader.error(Pos{},
                         "the configuration is empty; it needs at least source.postgres.dsn and "
                         "sink.kafka.brokers");
            return std::unexpected(reader.takeErrors());
        }
        if (counter.documents > 1 && !counter.second.is_null()) {
            reader.error(toPos(counter.second),
                         "a second YAML document starts here; the configuration is one document, "
                         "remove the '---' separator");
        }
        return parseDocument(reader, YAML::Load(text));
    } catch (const YAML::Exception& e) {
        reader.error(toPos(e.mark), fmt::format("invalid YAML: {}", e.msg));
    } catch (const std::exception& e) {
        reader.error(Pos{}, fmt::format("cannot read the configuration: {}", e.what()));
    }
    return std::unexpected(reader.takeErrors());
}

std::expected<Config, std::vector<ConfigError>> loadConfig(const std::string& path,
                                                           const EnvLookup& env) {
    const auto fail = [&](int err) {
        return std::unexpected(std::vector<ConfigError>{ConfigError{
            path, 0, 0,
            fmt::format("cannot read the configuration file: {}; check the path given with "
                        "--config or OUTBOXD_CONFIG",
                        std::strerror(err))}});
    };
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return fail(errno);
    }
    std::string text;
    std::array<char, 8192> buffer{};
    while (true) {
        const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), f);
        text.append(buffer.data(), n);
        if (n < buffer.size()) {
            break;
        }
    }
    const int read_errno = std::ferror(f) != 0 ? errno : 0;
    std::fclose(f);
    if (read_errno != 0) {
        return fail(read_errno);
    }
    return parseConfig(text, path, env);
}

}  // namespace outboxd::config
