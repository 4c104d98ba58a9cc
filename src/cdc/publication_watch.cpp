#include "cdc/publication_watch.h"

#include <pthread.h>

#include <algorithm>
#include <string_view>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "cdc/bounded_connect.h"
#include "cdc/replication_stream.h"
#include "config/identifier.h"

namespace outboxd::cdc {

namespace {

std::string qualified(const config::TableName& t) {
    return config::quoteIdentifierIfNeeded(t.schema) + "." + config::quoteIdentifierIfNeeded(t.name);
}

struct Result {
    PGresult* r = nullptr;
    ~Result() {
        if (r != nullptr) PQclear(r);
    }
};

}  // namespace

std::optional<Error> judgePublication(const std::vector<PublicationRow>& rows, const std::string& publication,
                                      const std::vector<config::TableName>& tables, Lsn verified) {
    const std::string since = verified.isValid() ? fmt::format("after {}", verified) : "since outboxd started";
    const std::string pub = config::quoteIdentifierIfNeeded(publication);
    if (rows.empty()) {
        return Error{ErrorKind::PublicationMissing,
                     fmt::format("publication '{}' was dropped while outboxd was streaming: rows committed {} are not "
                                 "streamed, and nothing past that is confirmed to the slot. Reconcile those rows from "
                                 "the outbox table, recreate the publication, and restart outboxd",
                                 publication, since)};
    }
    if (!rows.front().pubinsert) {
        return Error{ErrorKind::PublicationMissing,
                     fmt::format("publication '{}' stopped publishing inserts while outboxd was streaming "
                                 "(ALTER PUBLICATION ... SET (publish = ...)): rows committed {} are not streamed, and "
                                 "nothing past that is confirmed to the slot. Reconcile them from the outbox table, run "
                                 "ALTER PUBLICATION {} SET (publish = 'insert') and restart outboxd",
                                 publication, since, pub)};
    }
    std::string missing;
    for (const auto& t : tables) {
        bool found = false;
        for (const auto& row : rows) {
            if (row.schema && row.table && *row.schema == t.schema && *row.table == t.name) found = true;
        }
        if (!found) missing += (missing.empty() ? "" : ", ") + qualified(t);
    }
    if (missing.empty()) return std::nullopt;
    Error e{ErrorKind::PublicationMissing,
            fmt::format("outbox table {0} was removed from publication '{1}' while outboxd was streaming (ALTER "
                        "PUBLICATION ... DROP TABLE or SET TABLE, or a rename): its rows committed {2} are not "
                        "streamed, and nothing past that is confirmed to the slot. Reconcile them from the outbox "
                        "table, run ALTER PUBLICATION {3} ADD TABLE {0} and restart outboxd",
                        missing, publication, since, pub)};
    e.table = missing;
    if (verified.isValid()) e.lsn = fmt::format("{}", verified);
    return e;
}

PublicationWatch::PublicationWatch(PublicationWatchOptions options) : options_(std::move(options)) {}

PublicationWatch::~PublicationWatch() { stop(); }

void PublicationWatch::start() {
    thread_ = std::thread([this] { run(); });
    // Named for per-thread figures (top -H, /proc/PID/task/*/comm, bench/steady.sh).
    pthread_setname_np(thread_.native_handle(), "outboxd-watch");
}

void PublicationWatch::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::optional<Error> PublicationWatch::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

void PublicationWatch::checkNow(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!thread_.joinable() || stopping_) return;
    // Two more checks: the one under way may have read the WAL end before this call.
    const auto target = checks_done_ + 2;
    wanted_until_ = std::max(wanted_until_, target);
    wake_.notify_all();
    done_.wait_for(lock, timeout, [&] { return checks_done_ >= target || failure_.has_value() || stopping_; });
}

void PublicationWatch::want(Lsn lsn) {
    const std::uint64_t v = lsn.value();
    if (v <= verified_.load(std::memory_order_acquire) || v <= requested_.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(mutex_);
    const std::uint64_t before = requested_.load(std::memory_order_relaxed);
    if (v <= before) return;
    requested_.store(v, std::memory_order_relaxed);
    // Only a request after none was pending wakes the thread. While one is pending the thread is
    // checking or waiting out min_gap, and its next check reads a WAL end past every position the
    // relay has been sent, this one included; waking it for each acknowledgement (every event at
    // steady rates) would only put it back to sleep.
    if (before <= verified_.load(std::memory_order_relaxed)) wake_.notify_all();
}

void PublicationWatch::run() {
    PGconn* conn = nullptr;
    bool warned = false;
    std::vector<std::string> oids;
    auto drop = [&] {
        if (conn != nullptr) PQfinish(conn);
        conn = nullptr;
    };
    auto connect = [&]() -> bool {
        if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) return true;
        drop();
        if (validateDsn(options_.dsn)) return false;  // the relay reports it
        // Bounded: stop() joins this thread, so no call may hang on a dead network.
        conn = connectBounded(options_.dsn, "outboxd-publication-watch", options_.server);
        if (PQstatus(conn) != CONNECTION_OK) {
            // 57P03: "the database system is shutting down" (or starting up, or in recovery).
            if (std::string_view(PQerrorMessage(conn)).find("shutting down") != std::string_view::npos) {
                if (!server_stopping_.exchange(true)) {
                    spdlog::info("publication watch: the server is shutting down; confirming what was delivered "
                                 "so that its walsender can stop");
                }
            }
            if (!warned) {
                spdlog::warn("publication watch: could not connect ({}): {}; the slot's confirmed LSN waits until "
                             "it can check the publication again",
                             redactDsn(options_.dsn), PQerrorMessage(conn));
                warned = true;
            }
            drop();
            return false;
        }
        warned = false;
        return true;
    };
    // One check: the WAL end first, in its own statement, then the publication in a later snapshot.
    // Every table found there was in the publication when that WAL end was read, so every row
    // committed before it was decoded with the table published.
    auto check = [&]() -> bool {
        if (!connect()) return false;
        Result lsn{PQexec(conn, "SELECT pg_catalog.pg_current_wal_lsn()::text")};
        if (PQresultStatus(lsn.r) != PGRES_TUPLES_OK || PQntuples(lsn.r) != 1) {
            drop();
            return false;
        }
        auto end = Lsn::parse(PQgetvalue(lsn.r, 0, 0));
        if (!end) return false;
        const char* params[] = {options_.publication.c_str()};
        Result pub{PQexecParams(conn,
                                "SELECT p.pubinsert, t.schemaname, t.tablename FROM pg_catalog.pg_publication p LEFT "
                                "JOIN pg_catalog.pg_publication_tables t ON t.pubname = p.pubname WHERE p.pubname = $1",
                                1, nullptr, params, nullptr, nullptr, 0)};
        if (PQresultStatus(pub.r) != PGRES_TUPLES_OK) {
            drop();
            return false;
        }
        std::vector<PublicationRow> rows;
        for (int i = 0; i < PQntuples(pub.r); ++i) {
            PublicationRow row;
            row.pubinsert = std::string_view(PQgetvalue(pub.r, i, 0)) == "t";
            if (!PQgetisnull(pub.r, i, 1)) row.schema = PQgetvalue(pub.r, i, 1);
            if (!PQgetisnull(pub.r, i, 2)) row.table = PQgetvalue(pub.r, i, 2);
            rows.push_back(std::move(row));
        }
        // The tables' oids, once: a table missing later may only have been renamed or moved.
        if (oids.empty()) {
            for (const auto& t : options_.tables) {
                const char* names[] = {t.schema.c_str(), t.name.c_str()};
                Result oid{PQexecParams(conn,
                                        "SELECT c.oid::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                                        "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                                        2, nullptr, names, nullptr, nullptr, 0)};
                oids.push_back(PQresultStatus(oid.r) == PGRES_TUPLES_OK && PQntuples(oid.r) == 1
                                   ? std::string(PQgetvalue(oid.r, 0, 0))
                                   : std::string());
            }
        }
        if (auto bad = judgePublication(rows, options_.publication, options_.tables, verified())) {
            for (std::size_t i = 0; i < options_.tables.size() && i < oids.size(); ++i) {
                if (oids[i].empty()) continue;
                const auto& t = options_.tables[i];
                const char* id[] = {oids[i].c_str()};
                Result now{PQexecParams(conn,
                                        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN "
                                        "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
                                        1, nullptr, id, nullptr, nullptr, 0)};
                if (PQresultStatus(now.r) != PGRES_TUPLES_OK || PQntuples(now.r) != 1) continue;
                std::string schema = PQgetvalue(now.r, 0, 0), name = PQgetvalue(now.r, 0, 1);
                if (schema == t.schema && name == t.name) continue;
                bad->message = fmt::format(
                    "outbox table {}.{} is now named {}.{} (renamed or moved with ALTER TABLE ... RENAME / SET SCHEMA "
                    "while outboxd was streaming), so its rows would no longer be recognised; put the new name in "
                    "source.outbox.tables (or rename the table back), then restart. Nothing past {} is confirmed to "
                    "the slot, so nothing is skipped",
                    t.schema, t.name, schema, name, verified());
                break;
            }
            std::lock_guard lock(mutex_);
            if (!failure_) failure_ = std::move(*bad);
            return false;
        }
        if (end->value() > verified_.load(std::memory_order_relaxed)) {
            verified_.store(end->value(), std::memory_order_release);
        }
        server_stopping_.store(false, std::memory_order_release);
        return true;
    };
    // requested_ and verified_ change under mutex_ or from this thread, so a request made while
    // this thread waits wakes it.
    auto asked = [this] {
        return requested_.load(std::memory_order_relaxed) > verified_.load(std::memory_order_relaxed);
    };
    while (true) {
        const auto last = std::chrono::steady_clock::now();
        // A check that could not run (no connection) is retried on the interval, not every min_gap.
        const bool checked = check();
        std::unique_lock lock(mutex_);
        ++checks_done_;
        done_.notify_all();
        if (failure_) break;
        wake_.wait_for(lock, options_.interval,
                       [&] { return stopping_ || checks_done_ < wanted_until_ || (checked && asked()); });
        if (stopping_) break;
        // Asked for a later position: at most one check per min_gap (checkNow's waits are not held).
        if (checks_done_ >= wanted_until_) {
            wake_.wait_until(lock, last + options_.min_gap, [&] { return stopping_ || checks_done_ < wanted_until_; });
            if (stopping_) break;
        }
    }
    done_.notify_all();
    drop();
}

}  // namespace outboxd::cdc
