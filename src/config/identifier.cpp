#include "config/identifier.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace outboxd::config {

namespace {

constexpr std::size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

// PostgreSQL's downcase_identifier folds ASCII letters only.
std::string fold(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

}  // namespace

std::expected<IdentifierPart, std::string> readIdentifier(std::string_view text, std::string_view stop) {
    IdentifierPart part;
    if (text.starts_with('"')) {
        std::size_t i = 1;
        while (true) {
            if (i >= text.size()) {
                return std::unexpected(std::string("a double-quoted name is not closed; end it with '\"'"));
            }
            if (text[i] == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    part.name += '"';
                    i += 2;
                    continue;
                }
                ++i;
                break;
            }
            part.name += text[i++];
        }
        if (part.name.empty()) {
            return std::unexpected(std::string("a double-quoted name must not be empty (\"\")"));
        }
        part.used = i;
    } else {
        const std::size_t end = std::min(text.find_first_of(stop), text.size());
        const std::string_view raw = text.substr(0, end);
        if (raw.empty()) {
            return std::unexpected(std::string("a name must not be empty"));
        }
        if (raw.find('"') != std::string_view::npos ||
            std::ranges::any_of(raw, [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; })) {
            return std::unexpected(std::string(
                "a name with spaces or quotes must be double-quoted as a whole, e.g. '\"Outbox Messages\"'"));
        }
        part.name = fold(raw);
        part.used = end;
    }
    if (part.name.size() > kMaxIdentifierBytes) {
        return std::unexpected(fmt::format("a name is at most {} bytes", kMaxIdentifierBytes));
    }
    return part;
}

std::expected<std::string, std::string> parseIdentifier(std::string_view text) {
    auto part = readIdentifier(text, "");
    if (!part) return std::unexpected(part.error());
    if (part->used != text.size()) {
        return std::unexpected(std::string("nothing may follow the closing '\"' of a quoted name"));
    }
    return std::move(part->name);
}

std::expected<QualifiedName, std::string> parseQualifiedName(std::string_view text) {
    auto first = readIdentifier(text, ".");
    if (!first) return std::unexpected(first.error());
    if (first->used == text.size()) {
        return QualifiedName{"public", std::move(first->name)};
    }
    if (text[first->used] != '.') {
        return std::unexpected(std::string("after a quoted schema or table name comes '.' or nothing"));
    }
    const std::string_view rest = text.substr(first->used + 1);
    auto second = readIdentifier(rest, ".");
    if (!second) return std::unexpected(second.error());
    if (second->used != rest.size()) {
        return std::unexpected(std::string("a table name has at most two parts, schema.table"));
    }
    return QualifiedName{std::move(first->name), std::move(second->name)};
}

std::string quoteIdentifierIfNeeded(std::string_view name) {
    const bool bare = !name.empty() && (std::islower(static_cast<unsigned char>(name.front())) != 0 || name.front() == '_') &&
                      std::ranges::all_of(name, [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                      });
    if (bare) return std::string(name);
    std::string out = "\"";
    for (const char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace outboxd::config
