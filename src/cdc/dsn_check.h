#pragma once
// Checks a libpq connection string the way libpq will read it (PQconninfoParse), plus the option
// values libpq refuses only when it connects (sslmode, port, timeouts, ...), so that a bad DSN is
// a configuration error at --check-config and at start, not a connection retried forever.
// Messages name the option, never its value nor any part of the DSN. Pure apart from libpq's
// parser; any thread.

#include <optional>
#include <string>

namespace outboxd::cdc {

[[nodiscard]] std::optional<std::string> checkDsn(const std::string& dsn);

}  // namespace outboxd::cdc
