#pragma once
// A regular expression matched against a whole string, as Java's Matcher.matches() does (the
// routing.topic_regex of Debezium's route.topic.regex): PCRE2, whose syntax is Perl's, like Java's
// for what route regexes use (groups, named groups (?<name>...), classes, quantifiers).
//
// Owns the compiled pattern and its match data. Not thread-safe: one user (the router, on the
// relay's event-loop thread) per instance; config validation compiles its own.

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::common {

class Regex {
public:
    // Compiles `pattern` (UTF-8). The error says what is wrong and at which character.
    [[nodiscard]] static std::expected<Regex, std::string> compile(std::string_view pattern);

    ~Regex();
    Regex(Regex&&) noexcept;
    Regex& operator=(Regex&&) noexcept;

    // The number of a group given by name ("routedByValue") or number ("1"; "0" is the whole
    // match); nothing when the pattern has no such group.
    [[nodiscard]] std::optional<int> group(std::string_view name_or_number) const;

    // True when the whole `subject` matches; `groups` then holds each group's text (index 0 the
    // whole match; a group that took no part is empty). The views point into `subject`.
    [[nodiscard]] bool matchWhole(std::string_view subject, std::vector<std::string_view>& groups);

private:
    struct Impl;
    explicit Regex(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace outboxd::common
