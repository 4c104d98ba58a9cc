#pragma once
// Decides which LSN may be confirmed to the replication slot.
//
// Owns the list of transactions received but not yet fully acknowledged, in commit order.
// A transaction may be confirmed once it is committed (its Commit message arrived, so no more
// events will come) and Kafka acknowledged every one of its events. Acknowledgements arrive in
// any order across partitions, so the confirmed LSN is the end LSN of the newest transaction of
// the contiguous prefix of completed transactions: it never passes an event not acknowledged.
//
// Lifecycle: one per replication session; reset() when a new session starts from the slot's
// confirmed position. Used by the relay's event-loop thread only. Pure: no I/O.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <string>

#include "cdc/lsn.h"

namespace outboxd::cdc {

class Checkpointer {
public:
    using TxnSerial = std::uint64_t;

    explicit Checkpointer(Lsn confirmed = Lsn{}) : confirmed_(confirmed) {}

    // Forgets every transaction; the next session starts from `confirmed`.
    void reset(Lsn confirmed);

    // A transaction began (Begin message). Returns its serial, used to tag its events.
    [[nodiscard]] TxnSerial begin(PgTimestamp commit_time);

    // One event of the open transaction was handed to the sink.
    void addEvent(TxnSerial serial);

    // The open transaction committed; its end LSN becomes confirmable once all its events are
    // acknowledged. Fails when end_lsn goes backwards or no transaction is open.
    [[nodiscard]] std::expected<void, std::string> commit(TxnSerial serial, Lsn end_lsn);

    // Kafka acknowledged one event of the transaction `serial`.
    [[nodiscard]] std::expected<void, std::string> acknowledge(TxnSerial serial);

    // The server says it has sent everything up to `wal_end` (keepalive). When no transaction is
    // open or waiting for acknowledgements, that position can be confirmed: nothing before it
    // is owed to Kafka. This is what keeps an idle outbox from pinning WAL.
    void observeServerPosition(Lsn wal_end);

    [[nodiscard]] Lsn confirmed() const { return confirmed_; }
    [[nodiscard]] std::size_t inFlight() const { return in_flight_; }
    [[nodiscard]] std::size_t pendingTransactions() const { return txns_.size(); }
    [[nodiscard]] bool idle() const { return txns_.empty(); }

    // Commit time of the oldest transaction still tracked; zero when none.
    [[nodiscard]] PgTimestamp oldestCommitTime() const {
        return txns_.empty() ? PgTimestamp{} : txns_.front().commit_time;
    }

    // Commit time of a transaction still tracked (for latency); zero when unknown.
    [[nodiscard]] PgTimestamp commitTime(TxnSerial serial) const;

private:
    struct Txn {
        PgTimestamp commit_time;
        Lsn end_lsn;
        std::uint64_t pending = 0;
        bool committed = false;
    };

    void advance();
    Txn* find(TxnSerial serial);

    // Invariant: never decreases within a session.
    Lsn confirmed_;
    // Invariant: end LSNs of committed transactions increase from front to back.
    Lsn last_commit_end_;
    std::deque<Txn> txns_;
    // Serial of txns_.front(); serials are dense.
    TxnSerial front_serial_ = 0;
    TxnSerial next_serial_ = 0;
    std::size_t in_flight_ = 0;
};

}  // namespace outboxd::cdc
