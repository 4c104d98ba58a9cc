#include "cdc/slot_monitor.h"


#include <algorithm>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "cdc/bounded_connect.h"
#include "cdc/replication_stream.h"

namespace outboxd::cdc {

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
    PGconn* conn = nullptr;
    ~Conn() { reset(); }
    void reset() {
        if (conn != nullptr) PQfinish(conn);
        conn = nullptr;
    }
};

std::string trimmed(const char* s) {
    std::string out = s != nullptr ? s : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

}  // namespace

SlotMonitor::SlotMonitor(SlotMonitorOptions options, StateCallback on_state, HeartbeatCallback on_heartbeat)
    : options_(std::move(options)), on_state_(std::move(on_state)), on_heartbeat_(std::move(on_heartbeat)) {}

SlotMonitor::~SlotMonitor() { stop(); }

void SlotMonitor::start() {
    if (options_.check_interval.count() == 0 && options_.heartbeat_interval.count() == 0) return;
    thread_ = std::thread([this] { run(); });
}

void SlotMonitor::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void SlotMonitor::run() {
    Conn c;
    bool warned = false;
    std::string reported_invalidation;
    auto next_check = Clock::now();
    auto next_beat = Clock::now() + options_.heartbeat_interval;
    const bool checks = options_.check_interval.count() > 0;
    const bool beats = options_.heartbeat_interval.count() > 0;

    auto connect = [&]() -> bool {
        if (c.conn != nullptr && PQstatus(c.conn) == CONNECTION_OK) return true;
        c.reset();
        if (validateDsn(options_.dsn)) return false;  // the relay reports it
        // Bounded everything: shutdown joins this thread, so no call may hang on a dead network.
        c.conn = connectBounded(options_.dsn, "outboxd-monitor");
        if (PQstatus(c.conn) != CONNECTION_OK) {
            if (!warned) {
                spdlog::warn("slot monitor: could not connect ({}): {}; slot metrics are stale until it can",
                             redactDsn(options_.dsn), trimmed(PQerrorMessage(c.conn)));
                warned = true;
            }
            c.reset();
            return false;
        }
        if (warned) spdlog::info("slot monitor: connected again");
        warned = false;
        return true;
    };

    auto check = [&] {
        if (!connect()) return;
        const char* params[] = {options_.slot.c_str()};
        const int version = PQserverVersion(c.conn);
        const bool pg13 = version >= 130000;
        std::string sql = fmt::format(
            "SELECT active, {}, {}, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, {} "
            "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            pg13 ? "wal_status" : "''", pg13 ? "safe_wal_size" : "NULL::bigint", slotStateColumns(version));
        PGresult* r = PQexecParams(c.conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            spdlog::warn("slot monitor: reading pg_replication_slots failed: {}", trimmed(PQresultErrorMessage(r)));
            PQclear(r);
            c.reset();
            return;
        }
        SlotState state;
        if (PQntuples(r) == 1) {
            state.exists = true;
            state.active = std::string(PQgetvalue(r, 0, 0)) == "t";
            state.wal_status = PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1);
            if (!PQgetisnull(r, 0, 2)) state.safe_wal_size = std::stoll(PQgetvalue(r, 0, 2));
            if (!PQgetisnull(r, 0, 3)) state.retained_bytes = static_cast<std::uint64_t>(std::max(0LL, std::stoll(PQgetvalue(r, 0, 3))));
            auto text = [r](int col) -> std::optional<std::string> {
                if (PQgetisnull(r, 0, col)) return std::nullopt;
                return std::string(PQgetvalue(r, 0, col));
            };
            state.invalidation.wal_status = state.wal_status;
            if (auto v = text(5)) state.invalidation.conflicting = *v == "t";
            state.invalidation.invalidation_reason = text(6);
            state.invalidation.inactive_since = text(7);
        }
        PQclear(r);
        if (state.exists && isInvalidated(state.invalidation)) {
            std::string message = invalidationMessage(options_.slot, state.invalidation);
            if (message != reported_invalidation) spdlog::error("slot monitor: {}", message);
            reported_invalidation = std::move(message);
        } else {
            reported_invalidation.clear();
        }
        on_state_(state);
    };

    auto beat = [&] {
        if (!connect()) {
            on_heartbeat_(false);
            return;
        }
        PGresult* r = PQexec(c.conn, "SELECT pg_catalog.pg_logical_emit_message(false, 'outboxd.heartbeat', '')");
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok) {
            spdlog::warn("heartbeat failed: {}", trimmed(PQresultErrorMessage(r)));
            c.reset();
        }
        PQclear(r);
        on_heartbeat_(ok);
    };

    std::unique_lock lock(mutex_);
    while (!stopping_) {
        auto now = Clock::now();
        lock.unlock();
        if (checks && now >= next_check) {
            check();
            next_check = now + options_.check_interval;
        }
        if (beats && now >= next_beat) {
            beat();
            next_beat = now + options_.heartbeat_interval;
        }
        lock.lock();
        auto until = Clock::time_point::max();
        if (checks) until = std::min(until, next_check);
        if (beats) until = std::min(until, next_beat);
        wake_.wait_until(lock, until, [this] { return stopping_; });
    }
}

}  // namespace outboxd::cdc
