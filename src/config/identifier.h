#pragma once
// PostgreSQL identifiers as SQL writes them (spec.md "Names of tables and columns"): an unquoted
// name folds to lower case, a double-quoted one is kept exactly ("" inside it is one quote).
// The result is the name as the catalog holds it, which is what pgoutput sends and what the
// publication SQL quotes again. Pure; any thread.

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

namespace outboxd::config {

struct IdentifierPart {
    std::string name;       // the catalog name
    std::size_t used = 0;   // characters of the input it took
};

// Reads one identifier at the start of `text`. An unquoted one ends at the first character of
// `stop` (or the end); a quoted one at its closing quote. The error says what is wrong, without
// echoing the text.
[[nodiscard]] std::expected<IdentifierPart, std::string> readIdentifier(std::string_view text,
                                                                        std::string_view stop);

// The whole of `text` as one identifier (a column name).
[[nodiscard]] std::expected<std::string, std::string> parseIdentifier(std::string_view text);

// "schema.table" or "table"; schema is "public" when absent.
struct QualifiedName {
    std::string schema;
    std::string name;
};
[[nodiscard]] std::expected<QualifiedName, std::string> parseQualifiedName(std::string_view text);

// The identifier written as SQL would need it: bare when folding would keep it, else quoted.
[[nodiscard]] std::string quoteIdentifierIfNeeded(std::string_view name);

}  // namespace outboxd::config
