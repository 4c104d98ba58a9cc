#pragma once
// What the relay needs from a destination: hand it records, learn which were acknowledged.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "common/error.h"
#include "outbox/router.h"

namespace outboxd::sink {

// One acknowledgement (or failure) of a record, tagged with the token given to produce().
struct Delivery {
    std::uint64_t token = 0;
    bool ok = false;
    std::string topic;
    std::size_t bytes = 0;
    std::string error;  // when !ok
    // When !ok: the broker refused the record for good (too large, not authorised, invalid);
    // sending it again cannot succeed.
    bool permanent = false;
    // When permanent: "too_large" (the record exceeds a size limit) or "topic_refused" (the
    // topic is invalid, unknown or not authorised), and the refused record as produced (topic,
    // key, value, the headers id/type/aggregate_type in their fields, the others in
    // extra_headers), so that it can be dead-lettered.
    std::string reason;
    outbox::OutboxEvent record;
};

enum class ProduceStatus {
    Queued,     // accepted; a Delivery will follow
    QueueFull,  // try again after deliveries drained (backpressure)
};

class Sink {
public:
    virtual ~Sink() = default;

    // Hands one record over. Errors are definite refusals (invalid topic, message too large).
    [[nodiscard]] virtual std::expected<ProduceStatus, Error> produce(const outbox::OutboxEvent& event,
                                                                      std::uint64_t token) = 0;

    // Serves delivery reports, waiting up to `timeout` for one; appends them to `out`.
    // Fails when the producer hit a fatal error.
    [[nodiscard]] virtual std::expected<void, Error> poll(std::chrono::milliseconds timeout,
                                                          std::vector<Delivery>& out) = 0;

    // Records produced whose delivery report has not been served yet.
    [[nodiscard]] virtual std::size_t inFlight() const = 0;

    // A file descriptor that becomes readable when delivery reports are waiting, or -1.
    [[nodiscard]] virtual int eventFd() const { return -1; }

    // Exactly-once mode. A transactional sink opens a transaction at the first produce() after
    // the last commit or abort; these say whether one is open, since when, with how many records.
    [[nodiscard]] virtual bool transactional() const { return false; }
    [[nodiscard]] virtual bool transactionOpen() const { return false; }
    [[nodiscard]] virtual std::chrono::steady_clock::time_point transactionStarted() const { return {}; }
    [[nodiscard]] virtual std::size_t transactionRecords() const { return 0; }
    // Adds `checkpoint` (the position record) to the open transaction and commits it. On failure
    // the transaction is aborted (or the producer is fenced: ErrorKind::SinkFenced).
    [[nodiscard]] virtual std::expected<void, Error> commitTransaction(const outbox::OutboxEvent& /*checkpoint*/) {
        return {};
    }
    // Aborts the open transaction, if any. Fails when the producer is fenced or in a fatal state.
    [[nodiscard]] virtual std::expected<void, Error> abortTransaction() { return {}; }
};

}  // namespace outboxd::sink
