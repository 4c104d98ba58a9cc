#pragma once
// The Kafka producer: the only code that includes librdkafka.
//
// Owns one rd_kafka_t, configured for no loss (enable.idempotence=true, acks=all) and for the
// Java client's partitioning (murmur2_random), with the user's properties passed through.
// Delivery reports are served on the caller's thread by poll(); a pipe becomes readable when
// some are waiting so the relay can wait on it beside the replication socket.
// Lifecycle: created per replication session; destroying it purges what is still queued (the
// next session re-sends from the last confirmed LSN). Single-threaded use.

#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "sink/sink.h"

namespace outboxd::sink {

struct PropertyError {
    std::string property;  // the property at fault; empty when it is their combination
    std::string message;
};

// Builds (without connecting anywhere) the producer configuration that KafkaSink::create would
// build from `config`, brokers aside, and says what librdkafka or outboxd's rules refuse in it.
[[nodiscard]] std::optional<PropertyError> checkProducerProperties(const config::KafkaConfig& config);

class KafkaSink final : public Sink {
public:
    // With a non-empty `transactional_id` the producer is transactional (exactly-once mode):
    // create() runs init_transactions, which fences any older producer with that id and aborts
    // what it left open.
    [[nodiscard]] static std::expected<std::unique_ptr<KafkaSink>, Error> create(
        const config::KafkaConfig& config, const std::string& transactional_id = {});
    ~KafkaSink() override;

    KafkaSink(const KafkaSink&) = delete;
    KafkaSink& operator=(const KafkaSink&) = delete;

    [[nodiscard]] std::expected<ProduceStatus, Error> produce(const outbox::OutboxEvent& event,
                                                              std::uint64_t token) override;
    [[nodiscard]] std::expected<void, Error> poll(std::chrono::milliseconds timeout,
                                                  std::vector<Delivery>& out) override;
    [[nodiscard]] std::size_t inFlight() const override;
    [[nodiscard]] int eventFd() const override;

    [[nodiscard]] bool transactional() const override;
    [[nodiscard]] bool transactionOpen() const override;
    [[nodiscard]] std::chrono::steady_clock::time_point transactionStarted() const override;
    [[nodiscard]] std::size_t transactionRecords() const override;
    [[nodiscard]] std::expected<void, Error> commitTransaction(const outbox::OutboxEvent& checkpoint) override;
    [[nodiscard]] std::expected<void, Error> abortTransaction() override;
    // The producer's transaction.timeout.ms (librdkafka's default 60000 unless set in properties).
    [[nodiscard]] std::chrono::milliseconds transactionTimeout() const;

    // Creates `topic` with cleanup.policy=compact and one partition when it does not exist.
    [[nodiscard]] std::expected<void, Error> ensureCompactedTopic(const std::string& topic);

    // Whether a broker connection is up (from librdkafka's statistics, every second); unknown
    // until the first statistics. While none has been up for 30 s, poll() logs a warning once.
    [[nodiscard]] std::optional<bool> reachable() const;
    // Topic handles held (at most 1000: past that the least recently used half is released).
    [[nodiscard]] std::size_t topicHandles() const;
    void setUnreachableWarningAfterForTesting(std::chrono::milliseconds after);

    // Test seam: makes librdkafka raise a fatal error, as a lost idempotence state would.
    void raiseFatalErrorForTesting(const std::string& reason);

    struct Impl;

private:
    explicit KafkaSink(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Exactly-once mode: the value of the newest record with `key` on `topic`, read with a
// read_committed consumer (so only committed transactions count), or nullopt when there is
// none. The user's properties (security settings) apply to the consumer too.
[[nodiscard]] std::expected<std::optional<std::string>, Error> readLatestCommitted(const config::KafkaConfig& config,
                                                                                  const std::string& topic,
                                                                                  const std::string& key,
                                                                                  std::chrono::milliseconds timeout);

// The librdkafka properties outboxd sets before the user's (documented in docs/configuration.md).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> defaultProducerProperties();

// The version of the librdkafka the process runs with (rd_kafka_version_str(): the loaded
// library's, which may differ from the headers' when the wrong one is on the loader's path).
[[nodiscard]] std::string kafkaClientVersion();

// True when a librdkafka property's value must never be logged.
[[nodiscard]] bool isSecretProperty(std::string_view name);

}  // namespace outboxd::sink
