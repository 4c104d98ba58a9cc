#pragma once
// Where a side connection must go, over what the DSN says (connectBounded): the server the
// replication connection reached, so that a DSN naming several hosts cannot lead it elsewhere.

#include <string>

namespace outboxd::cdc {

// Empty fields leave the DSN's.
struct ServerPin {
    std::string host;
    std::string hostaddr;
    std::string port;
};

}  // namespace outboxd::cdc
