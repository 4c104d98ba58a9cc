#pragma once
// Sets up spdlog: one line per record on stderr, as text or JSON lines.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"

namespace outboxd::app {

void setupLogging(const config::LogConfig& log);

// A record's message on one line: line breaks inside it (libpq's multi-line errors, DETAIL and
// HINT lines) become "; ", trailing ones are dropped.
[[nodiscard]] std::string oneLine(std::string_view s);

// Structured fields of JSON log lines: each record carries the process-wide fields (e.g. slot),
// then those of the LogFields in scope on the logging thread, as "name":"value" members beside
// "msg" (empty values are left out). Text lines carry the message only.
void setProcessLogField(std::string name, std::string value);

class LogFields {
public:
    LogFields(std::initializer_list<std::pair<std::string, std::string>> fields);
    ~LogFields();
    LogFields(const LogFields&) = delete;
    LogFields& operator=(const LogFields&) = delete;

private:
    std::size_t count_;
};

// Escapes a string for a JSON string literal (no surrounding quotes).
[[nodiscard]] std::string jsonEscape(std::string_view s);

}  // namespace outboxd::app
