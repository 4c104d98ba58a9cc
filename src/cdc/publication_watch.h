#pragma once
// Watches, while outboxd streams, that the publication still publishes the inserts of every
// configured outbox table. `ALTER PUBLICATION ... DROP TABLE` (or SET TABLE, SET (publish = ...),
// DROP PUBLICATION) takes effect in the walsender without a message to the client: the table's
// inserts just stop arriving while keepalives move the confirmed LSN past them. So the relay
// confirms no further than `verified()`: the WAL position read just before a check that found
// every table in the publication with inserts published. A check that finds one missing sets
// `failure()`, and the relay stops before confirming past the last verified position.
//
// Owns one ordinary PGconn and one thread. A lost connection is retried on the next tick; while
// no check succeeds, `verified()` does not move (the slot's confirmation waits, nothing is lost).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cdc/lsn.h"
#include "common/error.h"
#include "cdc/server_pin.h"
#include "config/config.h"

namespace outboxd::cdc {

struct PublicationWatchOptions {
    std::string dsn;
    std::string publication;
    std::vector<config::TableName> tables;
    std::chrono::milliseconds interval{1000};
    // While want() asks for a position past verified(), checks follow each other this far apart
    // instead of `interval`, so the slot's confirmation trails the acknowledged events by about
    // this much (a SIGKILL re-sends what was acknowledged and not yet confirmed).
    std::chrono::milliseconds min_gap{50};
    // The server the replication connection reached. With a DSN that names several hosts, libpq
    // would otherwise fail over on its own: to a server that is not the walsender's (another
    // cluster, a standby), whose publication and WAL position say nothing of the stream's, and
    // past a server that refuses because it is shutting down, which the watch must see.
    ServerPin server{};
};

// What one check found, from the rows of
// SELECT p.pubinsert, t.schemaname, t.tablename FROM pg_publication p LEFT JOIN pg_publication_tables t ...
struct PublicationRow {
    bool pubinsert = false;
    std::optional<std::string> schema;  // NULL when the publication has no table
    std::optional<std::string> table;
};
// Pure: {} when every table is published with inserts, else the error to stop with.
[[nodiscard]] std::optional<Error> judgePublication(const std::vector<PublicationRow>& rows,
                                                    const std::string& publication,
                                                    const std::vector<config::TableName>& tables, Lsn verified);

class PublicationWatch {
public:
    explicit PublicationWatch(PublicationWatchOptions options);
    ~PublicationWatch();
    PublicationWatch(const PublicationWatch&) = delete;
    PublicationWatch& operator=(const PublicationWatch&) = delete;

    void start();
    void stop();
    // Invalid until the first successful check.
    // While the server is shutting down (it refuses new connections), no bound: its walsender
    // exits only once the client confirmed all it sent (the shutdown checkpoint included), so a
    // bound would hold the shutdown forever. A table dropped just before is still caught, loudly,
    // by the check at the next connect (the slot record says outboxd streamed from the publication).
    [[nodiscard]] Lsn verified() const {
        if (server_stopping_.load(std::memory_order_acquire)) return Lsn{~std::uint64_t{0}};
        return Lsn{verified_.load(std::memory_order_acquire)};
    }
    [[nodiscard]] std::optional<Error> failure() const;
    // Asks for a check now and waits up to `timeout` for it to finish (a final confirmation).
    void checkNow(std::chrono::milliseconds timeout);
    // Says the relay could confirm up to `lsn`: when that is past verified(), the next check comes
    // `min_gap` after the last one rather than `interval`. Does not wait; idle, nothing is asked.
    void want(Lsn lsn);

private:
    void run();

    PublicationWatchOptions options_;
    std::atomic<std::uint64_t> verified_{0};
    std::atomic<std::uint64_t> requested_{0};
    std::atomic<bool> server_stopping_{false};
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::uint64_t wanted_until_ = 0;
    std::uint64_t checks_done_ = 0;
    std::condition_variable done_;
    std::optional<Error> failure_;
    std::thread thread_;
};

}  // namespace outboxd::cdc
