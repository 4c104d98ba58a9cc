// The declarative key table (src/config/schema.*) against the reader, config/example.yaml and
// docs/configuration.md: a key cannot be added in one place and forgotten in another.

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

using namespace outboxd::config;

namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<const schema::Key*> leafKeys() {
    std::vector<const schema::Key*> out;
    for (const auto& key : schema::keys()) {
        if (key.type != schema::Type::Section) {
            out.push_back(&key);
        }
    }
    return out;
}

// How the docs' "default" column writes a default.
std::string displayDefault(const schema::Key& key) {
    const YAML::Node node = YAML::Load(std::string(key.default_yaml));
    if (node.IsSequence()) {
        std::string out = "[";
        for (std::size_t i = 0; i < node.size(); ++i) {
            out += (i > 0 ? ", " : "") + node[i].Scalar();
        }
        return out + "]";
    }
    if (node.IsMap()) {
        return node.size() == 0 ? "{}" : "?";
    }
    return node.Scalar().empty() ? "\"\"" : node.Scalar();
}

bool sameYaml(const YAML::Node& a, const YAML::Node& b) {
    if (a.Type() != b.Type()) {
        return false;
    }
    if (a.IsScalar()) {
        return a.Scalar() == b.Scalar();
    }
    if (a.size() != b.size()) {
        return false;
    }
    if (a.IsSequence()) {
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (!sameYaml(a[i], b[i])) {
                return false;
            }
        }
    }
    return !a.IsMap() || a.size() == 0;
}

std::string firstBackticked(std::string_view cell) {
    const auto open = cell.find('`');
    if (open == std::string_view::npos) {
        return {};
    }
    const auto close = cell.find('`', open + 1);
    return std::string(cell.substr(open + 1, close - open - 1));
}

std::string trimmed(std::string_view s) {
    const auto first = s.find_first_not_of(' ');
    const auto last = s.find_last_not_of(' ');
    return first == std::string_view::npos ? std::string() : std::string(s.substr(first, last - first + 1));
}

struct DocRow {
    std::string type;
    std::string default_cell;
    int line = 0;
};

// The rows of docs/configuration.md's "## Keys" section, by full key path.
std::map<std::string, DocRow> docRows(const std::string& text) {
    std::map<std::string, DocRow> rows;
    std::istringstream in(text);
    std::string line;
    bool in_keys = false;
    std::string section;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.starts_with("## ")) {
            in_keys = line == "## Keys";
            continue;
        }
        if (!in_keys) {
            continue;
        }
        if (line.starts_with("### ")) {
            section = firstBackticked(line);
            continue;
        }
        if (!line.starts_with("| `")) {
            continue;
        }
        std::vector<std::string> cells;
        std::size_t start = 1;
        while (cells.size() < 3) {
            const auto bar = line.find('|', start);
            REQUIRE(bar != std::string::npos);
            cells.push_back(trimmed(std::string_view(line).substr(start, bar - start)));
            start = bar + 1;
        }
        const std::string path = section + "." + firstBackticked(cells[0]);
        INFO("docs/configuration.md line " << number << ": " << path);
        CHECK(rows.emplace(path, DocRow{cells[1], cells[2], number}).second);
    }
    return rows;
}

void walkExample(const YAML::Node& map, const std::string& parent, std::set<std::string>& seen) {
    for (auto it = map.begin(); it != map.end(); ++it) {
        const std::string path =
            parent.empty() ? it->first.Scalar() : parent + "." + it->first.Scalar();
        INFO("config/example.yaml: " << path);
        const schema::Key* key = schema::find(path);
        REQUIRE(key != nullptr);
        if (key->type == schema::Type::Section) {
            REQUIRE(it->second.IsMap());
            walkExample(it->second, path, seen);
            continue;
        }
        seen.insert(path);
        if (!key->required) {
            CHECK(sameYaml(it->second, YAML::Load(std::string(key->default_yaml))));
        }
    }
}

const char* const kMinimal = R"(
source:
  postgres:
    dsn: "host=db"
sink:
  kafka:
    brokers: "kafka:9092"
)";

}  // namespace

TEST_CASE("every key of the table is in docs/configuration.md with its type and default, and no other",
          "[config][schema]") {
    const auto rows = docRows(readFile(std::string(OUTBOXD_SOURCE_DIR) + "/docs/configuration.md"));
    std::set<std::string> table;
    for (const schema::Key* key : leafKeys()) {
        table.insert(std::string(key->path));
        INFO("table key " << key->path);
        const auto row = rows.find(std::string(key->path));
        REQUIRE(row != rows.end());
        CHECK(row->second.type == schema::typeName(key->type));
        if (key->required) {
            CHECK(row->second.default_cell == "**required**");
        } else {
            CHECK(firstBackticked(row->second.default_cell) == displayDefault(*key));
        }
    }
    for (const auto& [path, row] : rows) {
        INFO("docs/configuration.md line " << row.line << " names " << path);
        CHECK(table.contains(path));
    }
}

TEST_CASE("every key of the table is in config/example.yaml with its default, and no other",
          "[config][schema]") {
    const YAML::Node example =
        YAML::Load(readFile(std::string(OUTBOXD_SOURCE_DIR) + "/config/example.yaml"));
    std::set<std::string> seen;
    walkExample(example, "", seen);
    for (const schema::Key* key : leafKeys()) {
        INFO("table key " << key->path);
        bool in_entry = false;
        for (auto p = schema::parentPath(key->path); !p.empty(); p = schema::parentPath(p)) {
            const schema::Key* ancestor = schema::find(p);
            in_entry = in_entry || (ancestor != nullptr && ancestor->type == schema::Type::MapList);
        }
        if (in_entry) {
            continue;  // an entry's key: the example shows the list's default (entries in comments)
        }
        CHECK(seen.contains(std::string(key->path)));
    }
}

TEST_CASE("the table is well formed", "[config][schema]") {
    std::set<std::string_view> paths;
    for (const auto& key : schema::keys()) {
        INFO(key.path);
        CHECK(paths.insert(key.path).second);
        const auto parent = schema::parentPath(key.path);
        if (!parent.empty()) {
            const schema::Key* p = schema::find(parent);
            REQUIRE(p != nullptr);
            // A list of maps declares the keys of its entries as the rows under it.
            CHECK((p->type == schema::Type::Section || p->type == schema::Type::MapList));
            CHECK(paths.contains(parent));  // parents come first
        }
        CHECK_FALSE(key.doc.empty());
        CHECK(key.doc.find('\n') == std::string_view::npos);
        if (key.type == schema::Type::Section) {
            CHECK(key.default_yaml.empty());
        } else {
            CHECK(key.required == key.default_yaml.empty());
        }
        CHECK((key.type == schema::Type::Enum) == !key.choices.empty());
        if (key.type == schema::Type::Integer) {
            CHECK(key.min <= key.max);
        }
    }
}

TEST_CASE("a minimal file gets the table's defaults, and they match Config's initializers",
          "[config][schema]") {
    const auto parsed = parseConfig(kMinimal, "t.yaml", [](std::string_view) { return std::nullopt; });
    REQUIRE(parsed.has_value());
    const Config plain;
    CHECK(parsed->postgres.slot == plain.postgres.slot);
    CHECK(parsed->postgres.publication == plain.postgres.publication);
    CHECK(parsed->postgres.create_slot == plain.postgres.create_slot);
    CHECK(parsed->postgres.create_publication == plain.postgres.create_publication);
    CHECK(parsed->postgres.status_interval == plain.postgres.status_interval);
    CHECK(parsed->postgres.heartbeat_interval == plain.postgres.heartbeat_interval);
    CHECK(parsed->postgres.slot_check_interval == plain.postgres.slot_check_interval);
    CHECK(parsed->outbox.tables == plain.outbox.tables);
    CHECK(parsed->outbox.columns.id == plain.outbox.columns.id);
    CHECK(parsed->outbox.columns.aggregate_type == plain.outbox.columns.aggregate_type);
    CHECK(parsed->outbox.columns.aggregate_id == plain.outbox.columns.aggregate_id);
    CHECK(parsed->outbox.columns.type == plain.outbox.columns.type);
    CHECK(parsed->outbox.columns.payload == plain.outbox.columns.payload);
    CHECK(parsed->outbox.columns.timestamp == plain.outbox.columns.timestamp);
    CHECK(parsed->kafka.properties == plain.kafka.properties);
    CHECK(parsed->kafka.shutdown_timeout == plain.kafka.shutdown_timeout);
    CHECK(parsed->metrics.listen == plain.metrics.listen);
    CHECK(parsed->log.level == plain.log.level);
    CHECK(parsed->log.format == plain.log.format);
    CHECK(fmt::format("\"{}\"", parsed->routing.topic.source) == schema::find("routing.topic")->default_yaml);
    CHECK(fmt::format("\"{}\"", parsed->routing.key.source) == schema::find("routing.key")->default_yaml);
}

namespace {

// kMinimal with one more key set to `value` (YAML text).
std::string withKey(std::string_view path, const std::string& value) {
    YAML::Node root = YAML::Load(kMinimal);
    std::vector<std::string> parts;
    std::string_view rest = path;
    while (true) {
        const auto dot = rest.find('.');
        parts.emplace_back(rest.substr(0, dot));
        if (dot == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(dot + 1);
    }
    YAML::Node node = root;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        if (!node[parts[i]]) {
            node[parts[i]] = YAML::Node(YAML::NodeType::Map);
        }
        node.reset(node[parts[i]]);
    }
    node[parts.back()] = YAML::Load(value);
    YAML::Emitter out;
    out << root;
    return out.c_str();
}

std::optional<std::string> noEnv(std::string_view) {
    return std::nullopt;
}

}  // namespace

TEST_CASE("integer ranges and enum choices come from the table", "[config][schema]") {
    for (const auto& key : schema::keys()) {
        INFO(key.path);
        const schema::Key* parent = schema::find(schema::parentPath(key.path));
        if (parent != nullptr && parent->type == schema::Type::MapList && key.type == schema::Type::Enum) {
            // An entry's key: tried in an entry whose other required keys are given.
            std::string others;
            for (const auto& sibling : schema::keys()) {
                if (schema::parentPath(sibling.path) == parent->path && sibling.required && sibling.path != key.path &&
                    sibling.type != schema::Type::Enum) {
                    others += fmt::format(", {}: c", schema::leafName(sibling.path));
                }
            }
            const auto entry = [&](std::string_view value) {
                return withKey(parent->path, fmt::format("[{{{}: {}{}}}]", schema::leafName(key.path), value, others));
            };
            for (const auto choice : key.choices) {
                INFO(choice);
                CHECK(parseConfig(entry(choice), "t.yaml", noEnv).has_value());
            }
            const auto r = parseConfig(entry("nonsense"), "t.yaml", noEnv);
            REQUIRE_FALSE(r.has_value());
            REQUIRE(r.error().size() == 1);
            std::string words;
            for (const auto choice : key.choices) {
                words += (words.empty() ? "" : ", ") + std::string(choice);
            }
            CHECK(r.error()[0].message.starts_with(
                fmt::format("{}: invalid value 'nonsense'; use one of {}", key.path, words)));
            continue;
        }
        if (key.type == schema::Type::Integer) {
            CHECK(parseConfig(withKey(key.path, std::to_string(key.min)), "t.yaml", noEnv).has_value());
            CHECK(parseConfig(withKey(key.path, std::to_string(key.max)), "t.yaml", noEnv).has_value());
            for (const auto outside : {key.min - 1, key.max + 1}) {
                const auto r = parseConfig(withKey(key.path, std::to_string(outside)), "t.yaml", noEnv);
                REQUIRE_FALSE(r.has_value());
                REQUIRE(r.error().size() == 1);
                CHECK(r.error()[0].message == fmt::format("{}: must be between {} and {}, got {}", key.path,
                                                          key.min, key.max, outside));
            }
        }
        if (key.type == schema::Type::Enum) {
            for (const auto choice : key.choices) {
                INFO(choice);
                CHECK(parseConfig(withKey(key.path, std::string(choice)), "t.yaml", noEnv).has_value());
            }
            const auto r = parseConfig(withKey(key.path, "nonsense"), "t.yaml", noEnv);
            REQUIRE_FALSE(r.has_value());
            REQUIRE(r.error().size() == 1);
            std::string words;
            for (const auto choice : key.choices) {
                words += (words.empty() ? "" : ", ") + std::string(choice);
            }
            CHECK(r.error()[0].message.starts_with(
                fmt::format("{}: invalid value 'nonsense'; use one of {}", key.path, words)));
        }
    }
}

TEST_CASE("each section allows exactly its keys in the table, in the table's order", "[config][schema]") {
    for (const auto& key : schema::keys()) {
        if (key.type != schema::Type::Section) {
            continue;
        }
        INFO(key.path);
        std::string expected;
        for (const auto& child : schema::keys()) {
            if (schema::parentPath(child.path) == key.path) {
                expected += (expected.empty() ? "" : ", ") + std::string(schema::leafName(child.path));
            }
        }
        const schema::Key* parent = schema::find(schema::parentPath(key.path));
        std::string yaml = withKey(std::string(key.path) + ".zzzzzzzzzzzz", "1");
        if (parent != nullptr && parent->type == schema::Type::MapList) {
            // A section inside an entry: tried in an entry whose required keys are given.
            std::string others;
            for (const auto& sibling : schema::keys()) {
                if (schema::parentPath(sibling.path) == parent->path && sibling.required) {
                    others += fmt::format(", {}: c", schema::leafName(sibling.path));
                }
            }
            yaml = withKey(parent->path, fmt::format("[{{{}: {{zzzzzzzzzzzz: 1}}{}}}]", schema::leafName(key.path), others));
        }
        const auto r = parseConfig(yaml, "t.yaml", noEnv);
        REQUIRE_FALSE(r.has_value());
        REQUIRE(r.error().size() == 1);
        CHECK(r.error()[0].message ==
              fmt::format("unknown key '{}.zzzzzzzzzzzz' (allowed under '{}': {})", key.path, key.path, expected));
    }
}

TEST_CASE("a key written at the wrong level is pointed to the table's place for it", "[config][schema]") {
    const auto r = parseConfig(withKey("routing.slot_check_interval_ms", "5"), "t.yaml", noEnv);
    REQUIRE_FALSE(r.has_value());
    REQUIRE(r.error().size() == 1);
    CHECK(r.error()[0].message.find("'slot_check_interval_ms' belongs at "
                                    "'source.postgres.slot_check_interval_ms'") != std::string::npos);
}
