#pragma once
// Watches the replication slot from a separate, ordinary connection: reads its state from
// pg_replication_slots on a timer (retained WAL, wal_status, safe_wal_size), and, when asked,
// writes a heartbeat (a non-transactional logical decoding message) so the slot shows progress
// where the server sends no keepalive for long. When PostgreSQL invalidates the slot, it logs why
// once (invalidation_reason on 17+, conflicting on 16), before the stream itself fails.
//
// Owns one PGconn (not a replication connection) and one thread; start() launches it, the
// destructor stops and joins it. Reports go to the callbacks, on the monitor's thread. A lost
// connection is logged once and retried on the next tick: the monitor never stops the relay.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cdc/server_version.h"

namespace outboxd::cdc {

struct SlotState {
    bool exists = false;
    bool active = false;
    std::string wal_status;                  // reserved, extended, unreserved, lost ("" before PG13)
    std::optional<std::int64_t> safe_wal_size;  // NULL when max_slot_wal_keep_size = -1
    std::uint64_t retained_bytes = 0;        // pg_current_wal_lsn() - restart_lsn
    SlotInvalidation invalidation;           // wal_status again, conflicting (16+), reason (17+)
};

struct SlotMonitorOptions {
    std::string dsn;
    std::string slot;
    std::chrono::milliseconds check_interval{10000};  // 0: never read the slot
    std::chrono::milliseconds heartbeat_interval{0};  // 0: no heartbeat
};

class SlotMonitor {
public:
    using StateCallback = std::function<void(const SlotState&)>;
    using HeartbeatCallback = std::function<void(bool ok)>;

    SlotMonitor(SlotMonitorOptions options, StateCallback on_state, HeartbeatCallback on_heartbeat);
    ~SlotMonitor();

    SlotMonitor(const SlotMonitor&) = delete;
    SlotMonitor& operator=(const SlotMonitor&) = delete;

    // Starts the thread; does nothing when both intervals are 0.
    void start();
    void stop();

    struct Impl;

private:
    void run();

    SlotMonitorOptions options_;
    StateCallback on_state_;
    HeartbeatCallback on_heartbeat_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace outboxd::cdc
