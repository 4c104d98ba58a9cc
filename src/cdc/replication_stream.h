#pragma once
// The replication connection: the only code that includes libpq.
//
// Owns one PGconn in replication=database mode. open() connects, checks the server, makes sure
// the publication and the pgoutput slot exist (creating them when allowed), and issues
// START_REPLICATION from the slot's confirmed position. Afterwards the connection is
// non-blocking: next() hands out CopyData frames as they arrive and sendStatus() queues standby
// status updates. Lifecycle: one per replication session. Single-threaded use.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cdc/lsn.h"
#include "cdc/wire/copy_data.h"
#include "common/error.h"
#include "config/config.h"

namespace outboxd::cdc {

struct StreamOptions {
    std::string dsn;
    std::string slot;
    std::string publication;
    bool create_slot = true;
    bool create_publication = true;
    std::vector<config::TableName> tables;
    int max_proto_version = 4;  // highest pgoutput protocol version the decoder handles
    // The operator accepts that a lost slot (recorded on the publication, absent now) is
    // recreated at the current WAL position (--accept-slot-loss).
    bool accept_slot_loss = false;
    // Columns the outbox tables must have, with the configuration key that names each: every
    // table's, or only `table`'s (a table with settings of its own).
    struct RequiredColumn {
        std::string key;
        std::string column;
        std::optional<config::TableName> table{};
    };
    std::vector<RequiredColumn> required_columns;
    bool failover = false;      // the slot is (created as) a failover slot (PostgreSQL 17+)
    // The system identifier of the first session's server ("" for the first session): another
    // cluster is refused before anything is done on it (checkSameSystem).
    std::string expected_system_id;
    // The timeline of the previous session's server (0 for the first session) and the LSN this
    // outboxd last confirmed: on a later timeline (a promoted standby) the slot must be the
    // synchronized one and not ahead of it (checkPromotedSlot).
    std::uint32_t expected_timeline = 0;
    Lsn confirmed_here;
};

// What open() learned about the server and the slot.
struct StreamInfo {
    int server_version = 0;  // PQserverVersion, e.g. 150018
    int proto_version = 1;
    bool messages = false;  // logical decoding messages requested (PG14+)
    std::string system_id;
    std::uint32_t timeline = 0;  // IDENTIFY_SYSTEM's timeline
    Lsn server_flush;       // IDENTIFY_SYSTEM's xlogpos: the server's WAL flush position at connect
    Lsn start_lsn;          // the slot's confirmed_flush_lsn when streaming started
    bool slot_created = false;
    // Twice the server's wal_sender_timeout (at least 10 s); 0 when it is disabled. A session
    // that hears nothing from the server for this long is dead.
    std::chrono::milliseconds server_silence_limit{0};
    // The server the connection reached (PQhost, PQhostaddr, PQport): with a DSN that names
    // several hosts, the one libpq settled on, so that side connections can go to the same one.
    std::string host;
    std::string hostaddr;
    std::string port;
};

// nullopt when libpq can parse the connection string, else a message that quotes none of it.
[[nodiscard]] std::optional<std::string> validateDsn(const std::string& dsn);

// Removes password=... (key/value or URI) from a connection string for logging.
[[nodiscard]] std::string redactDsn(std::string_view dsn);

// The linked libpq's version, e.g. "15.5" (PQlibVersion).
[[nodiscard]] std::string libpqVersion();

class ReplicationStream {
public:
    [[nodiscard]] static std::expected<std::unique_ptr<ReplicationStream>, Error> open(const StreamOptions& options);
    ~ReplicationStream();

    ReplicationStream(const ReplicationStream&) = delete;
    ReplicationStream& operator=(const ReplicationStream&) = delete;

    [[nodiscard]] const StreamInfo& info() const { return info_; }
    [[nodiscard]] int socket() const;

    // Returns the next complete CopyData frame, reading what the socket has when none is buffered
    // and `may_read` is true; nullopt when no complete frame is buffered (with `may_read`, once a
    // read brought none: the socket is drained until poll says otherwise). The frame is valid
    // until the next call. Errors end the session.
    [[nodiscard]] std::expected<std::optional<std::span<const std::byte>>, Error> next(bool may_read = true);

    // Queues a standby status update and tries to flush it.
    [[nodiscard]] std::expected<void, Error> sendStatus(const wire::StandbyStatusUpdate& update);

    // Flushes queued output; true when everything was sent.
    [[nodiscard]] std::expected<bool, Error> flush();

    // Ends COPY politely (CopyDone) so the server records the last status; best effort.
    void close();

    struct Impl;

private:
    explicit ReplicationStream(std::unique_ptr<Impl> impl, StreamInfo info);
    std::unique_ptr<Impl> impl_;
    StreamInfo info_;
};

}  // namespace outboxd::cdc
