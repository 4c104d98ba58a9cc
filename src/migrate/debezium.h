#pragma once
// `outboxd --from-debezium FILE`: a Debezium PostgreSQL connector configuration with the Outbox
// Event Router (Kafka Connect JSON, {"name":..., "config": {...}} or the bare map, or Debezium
// Server application.properties) -> the equivalent outboxd YAML.
//
// Pure: text in, text out; no file or network access. Every option that has no outboxd
// equivalent becomes a note, printed as a YAML comment at the end of the YAML.

#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::migrate {

struct Conversion {
    std::string yaml;                // loads with config::parseConfig; the notes are at its end
    std::vector<std::string> notes;  // one per option not carried over (or carried with a caveat)
};

// `source` names the file in the YAML's first comment. The error says why `text` is not a
// Debezium PostgreSQL connector configuration with the Outbox Event Router, and what is expected.
[[nodiscard]] std::expected<Conversion, std::string> fromDebezium(std::string_view text, std::string_view source);

// Java's .properties syntax (java.util.Properties.load): '#'/'!' comments, '=', ':' or blanks
// between key and value, '\' line continuations and escapes (\t \n \uXXXX ...). Later keys win.
[[nodiscard]] std::expected<std::vector<std::pair<std::string, std::string>>, std::string> parseProperties(
    std::string_view text);

// A Java regex replacement (Matcher.appendReplacement: $n, ${name}, \x) as an outboxd topic
// template with {$n}/{$name} placeholders and literal braces doubled; `group_exists` tells whether a
// group number exists (Java takes the longest number that is a group).
[[nodiscard]] std::expected<std::string, std::string> javaReplacementToTemplate(
    std::string_view replacement, const std::function<bool(int)>& group_exists);

}  // namespace outboxd::migrate
