#include "cdc/bounded_connect.h"

#include <vector>

namespace outboxd::cdc {

PGconn* connectBounded(const std::string& dsn, const char* application_name, const ServerPin& pin) {
    // The DSN is expanded in place of dbname (expand_dbname), after the bounds: an option the DSN
    // sets itself wins. fallback_application_name applies only where the DSN names none. The pin
    // comes last, so that it replaces the DSN's host list (and hostaddr list, which must match it
    // in length); libpq ignores the empty ones.
    std::vector<const char*> keys = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                     "keepalives_count", "tcp_user_timeout", "options", "dbname",
                                     "fallback_application_name"};
    std::vector<const char*> values = {"5",   "1", "10", "5", "3", "15000", "-c statement_timeout=5000", dsn.c_str(),
                                       application_name};
    if (!pin.host.empty() || !pin.hostaddr.empty()) {
        keys.push_back("host");
        values.push_back(pin.host.c_str());
        keys.push_back("hostaddr");
        values.push_back(pin.hostaddr.c_str());
    }
    if (!pin.port.empty()) {
        keys.push_back("port");
        values.push_back(pin.port.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    return PQconnectdbParams(keys.data(), values.data(), 1);
}

}  // namespace outboxd::cdc
