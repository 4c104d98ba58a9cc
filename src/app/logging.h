#pragma once
// Sets up spdlog: one line per record on stderr, as text or JSON lines.

#include "config/config.h"

namespace outboxd::app {

void setupLogging(const config::LogConfig& log);

// Escapes a string for a JSON string literal (no surrounding quotes).
[[nodiscard]] std::string jsonEscape(std::string_view s);

}  // namespace outboxd::app
