#include "cdc/bounded_connect.h"

namespace outboxd::cdc {

PGconn* connectBounded(const std::string& dsn, const char* application_name) {
    // The DSN is expanded in place of dbname (expand_dbname), after the bounds: an option the DSN
    // sets itself wins. fallback_application_name applies only where the DSN names none.
    const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", "options", "dbname", "fallback_application_name",
                          nullptr};
    const char* values[] = {"5",   "1", "10", "5", "3", "15000", "-c statement_timeout=5000", dsn.c_str(),
                            application_name, nullptr};
    return PQconnectdbParams(keys, values, 1);
}

}  // namespace outboxd::cdc
