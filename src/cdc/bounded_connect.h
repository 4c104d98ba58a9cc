#pragma once
// A libpq connection for the side threads (slot monitor, publication watch) whose every call is
// bounded: connect timeout, TCP keepalives and user timeout, and a statement timeout, so that
// stop() can join those threads even when the network to the server is dead.

#include <libpq-fe.h>

#include <string>

#include "cdc/server_pin.h"

namespace outboxd::cdc {

// Connects with the DSN's options plus those bounds, and to `pin`'s server when it names one;
// the caller owns the result (PQfinish), which is never null: check PQstatus.
[[nodiscard]] PGconn* connectBounded(const std::string& dsn, const char* application_name, const ServerPin& pin = {});

}  // namespace outboxd::cdc
