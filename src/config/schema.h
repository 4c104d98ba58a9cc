#pragma once
// The one declarative table of configuration keys: every section and key outboxd reads, with its
// type, default, range or choices and one line of documentation. The reader (config.cpp) takes
// the allowed keys of each section, the did-you-mean candidates, the "belongs at" hint, integer
// ranges, enum choices and every default from here; tests check config/example.yaml and
// docs/configuration.md against it. Pure data: no YAML, no I/O. Immutable, any thread.
//
// To add a key: add a row here (in the order the key should be listed in messages), read it in
// config.cpp, and document it in docs/configuration.md and config/example.yaml (the unit test
// config_schema_test fails until all four agree).

#include <cstdint>
#include <span>
#include <string_view>

namespace outboxd::config::schema {

enum class Type {
    Section,     // a map of the keys listed under it
    FreeMap,     // a map whose keys are not checked (librdkafka properties)
    String,
    Bool,
    Integer,     // within [min, max]
    Enum,        // one of `choices`
    Template,    // a "{column}" template (a string)
    StringList,  // a YAML list of strings
    MapList,     // a YAML list of maps; the keys each map may hold are the rows under it
};

struct Key {
    std::string_view path{};  // "source.postgres.slot"
    Type type = Type::String;
    // The default as YAML text, exactly as config/example.yaml writes it; empty for a section
    // and for a required key.
    std::string_view default_yaml{};
    bool required = false;
    std::int64_t min = 0;  // Integer only
    std::int64_t max = 0;
    std::span<const std::string_view> choices{};  // Enum only, in the order messages list them
    std::string_view doc{};                       // one line
};

// Every key, parents before children, siblings in the order messages list them.
[[nodiscard]] std::span<const Key> keys();

// The key at `path`, or nullptr.
[[nodiscard]] const Key* find(std::string_view path);

// The last component of a path ("slot" for "source.postgres.slot").
[[nodiscard]] std::string_view leafName(std::string_view path);

// The parent path ("source.postgres" for "source.postgres.slot", "" for "source").
[[nodiscard]] std::string_view parentPath(std::string_view path);

// How docs/configuration.md names the type in its "type" column.
[[nodiscard]] std::string_view typeName(Type type);

}  // namespace outboxd::config::schema
