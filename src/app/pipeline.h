#pragma once
// The relay's per-session processing, without I/O of its own: CopyData frames in, records to
// the sink, acknowledgements to the checkpointer.
//
// Owns the router, the checkpointer and the transaction being received; borrows the sink and
// the metrics. The session (relay.cpp) feeds it frames from the replication connection and
// sends the status updates it asks for. Lifecycle: one per replication session. Used by the
// relay's event-loop thread only.

#include <cstddef>
#include <deque>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cdc/checkpoint.h"
#include "cdc/checkpointer.h"
#include "cdc/pgoutput/decoder.h"
#include "common/error.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "outbox/router.h"
#include "sink/sink.h"

namespace outboxd::app {

class Pipeline {
public:
    Pipeline(const config::Config& config, sink::Sink& sink, metrics::Metrics& metrics, int proto_version,
             cdc::Lsn start);

    // The typed-payload set used from the next row on (nullptr: none). Not owned.
    void setTypedPayloads(outbox::payload::TypedPayloads* set) { router_.setTypedPayloads(set); }

    // Exactly-once mode: transactions that Kafka already holds (commit LSN at or below the
    // checkpoint's) are skipped, their rows neither routed nor produced.
    void setSkipRule(cdc::SkipRule rule) { skip_rule_ = rule; }
    [[nodiscard]] std::uint64_t skippedTransactions() const { return skipped_txns_; }

    // The last PostgreSQL transaction whose Commit arrived: Begin's commit LSN and the end LSN
    // (invalid before the first).
    struct LastCommit {
        cdc::Lsn commit_lsn;
        cdc::Lsn end_lsn;
    };
    [[nodiscard]] LastCommit lastCommit() const { return last_commit_; }
    // True between PostgreSQL transactions: nothing of an open one received, held or waiting.
    [[nodiscard]] bool atTransactionBoundary() const {
        return !open_txn_ && !held_ && dead_letters_.empty() && !own_commit_;
    }
    // Commit LSN of the transaction being received (invalid when none).
    [[nodiscard]] cdc::Lsn openCommitLsn() const { return open_txn_ ? change_ctx_.commit_lsn : cdc::Lsn{}; }

    // Handles one CopyData frame from the server (XLogData or keepalive).
    [[nodiscard]] std::expected<void, Error> handleFrame(std::span<const std::byte> frame);

    // True while a record the sink refused with QueueFull is held: read nothing more until
    // retryHeld() has queued it.
    // Also true while a dead-letter record waits for room in the producer's queue.
    [[nodiscard]] bool blocked() const { return held_.has_value() || !dead_letters_.empty(); }
    [[nodiscard]] std::expected<void, Error> retryHeld();

    // Serves the sink's delivery reports, waiting up to `timeout` for one. A failed delivery is
    // an error: the session ends and the next one re-sends from the confirmed LSN.
    [[nodiscard]] std::expected<void, Error> serveDeliveries(std::chrono::milliseconds timeout);

    // The LSN that may be confirmed to the slot now.
    [[nodiscard]] cdc::Lsn confirmed() const { return checkpointer_.confirmed(); }
    [[nodiscard]] cdc::Lsn serverWalEnd() const { return server_wal_end_; }
    [[nodiscard]] std::size_t inFlight() const { return checkpointer_.inFlight(); }
    // Commit time of the oldest transaction not yet confirmed, if any (for lag in seconds).
    [[nodiscard]] std::optional<cdc::PgTimestamp> oldestUnconfirmedCommit() const;

    // The server asked for a status update (keepalive with reply requested); cleared on read.
    [[nodiscard]] bool takeReplyRequest() {
        bool r = reply_requested_;
        reply_requested_ = false;
        return r;
    }

private:
    std::expected<void, Error> handleMessage(cdc::pgoutput::Message& message, cdc::Lsn lsn);
    std::expected<void, Error> produceHeld();
    // One outbox row (or a logical message as one) of the open transaction: routed, dead-lettered
    // or refused, then produced.
    std::expected<void, Error> routeInsert(const cdc::pgoutput::Insert& insert, cdc::Lsn lsn);
    // A logical message whose prefix is listed in source.outbox.messages.prefixes.
    std::expected<void, Error> handleEventMessage(const cdc::pgoutput::LogicalMessage& message, cdc::Lsn lsn);
    // Commits the transaction of one that a non-transactional message opened, once its record
    // is no longer held.
    std::expected<void, Error> finishOwnTransaction();
    // With invalid_rows.action dead-letter: queues the dead-letter record of `refused`, a record
    // Kafka refused for good (`reason` a metric label), under the same checkpoint token, so its
    // LSN is confirmed only once the dead-letter record is acknowledged.
    std::expected<void, Error> deadLetterRefused(const outbox::OutboxEvent& refused, std::uint64_t token,
                                                 std::string_view reason, std::string_view what);
    std::expected<void, Error> flushDeadLetters();
    // A dead-letter record too large for Kafka itself (a payload over the producer's
    // message.max.bytes, which holds for every topic, or over the dead-letter topic's
    // max.message.bytes): sent again without its value, the headers saying how many bytes were
    // left out and where the row is, so that one oversized row cannot stop the stream for good.
    static void omitPayload(outbox::OutboxEvent& dead, std::string_view why);

    const config::Config& config_;
    sink::Sink& sink_;
    metrics::Metrics& metrics_;
    outbox::Router router_;
    cdc::Checkpointer checkpointer_;
    cdc::pgoutput::DecodeContext decode_ctx_;

    // Set between Begin and Commit.
    std::optional<cdc::Checkpointer::TxnSerial> open_txn_;
    outbox::ChangeContext change_ctx_;
    outbox::OutboxEvent event_;
    // Invariant: when set, event_ holds a routed record of transaction *held_ that the sink
    // refused with QueueFull.
    std::optional<cdc::Checkpointer::TxnSerial> held_;
    // Set while a non-transactional message's own transaction waits for its record to be queued.
    std::optional<cdc::Lsn> own_commit_;
    cdc::pgoutput::Insert message_row_;  // a logical message as a row (its values in router_)
    std::vector<sink::Delivery> deliveries_;
    // Dead-letter records of refused deliveries not yet accepted by the sink (QueueFull), with
    // their checkpoint token (already counted by the checkpointer, not yet acknowledged).
    std::deque<std::pair<outbox::OutboxEvent, std::uint64_t>> dead_letters_;
    // Invariant: never decreases (XLogData for Relation messages carries LSN 0).
    cdc::Lsn server_wal_end_;
    bool reply_requested_ = false;
    cdc::SkipRule skip_rule_{std::nullopt};
    // Set between Begin and Commit of a transaction the skip rule skips.
    bool skipping_ = false;
    std::uint64_t skipped_txns_ = 0;
    bool logged_skips_ = false;
    LastCommit last_commit_;
    std::uint64_t skips_logged_ = 0;
    std::uint64_t updates_skipped_ = 0;
    bool warned_messages_ = false;
    bool warned_timestamp_ = false;
    // schema.table of each outbox relation seen, for the errors' structured fields.
    std::unordered_map<std::uint32_t, std::string> table_names_;
};

}  // namespace outboxd::app
