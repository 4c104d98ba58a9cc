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
    [[nodiscard]] static std::expected<std::unique_ptr<KafkaSink>, Error> create(const config::KafkaConfig& config);
    ~KafkaSink() override;

    KafkaSink(const KafkaSink&) = delete;
    KafkaSink& operator=(const KafkaSink&) = delete;

    [[nodiscard]] std::expected<ProduceStatus, Error> produce(const outbox::OutboxEvent& event,
                                                              std::uint64_t token) override;
    [[nodiscard]] std::expected<void, Error> poll(std::chrono::milliseconds timeout,
                                                  std::vector<Delivery>& out) override;
    [[nodiscard]] std::size_t inFlight() const override;
    [[nodiscard]] int eventFd() const override;

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

// The librdkafka properties outboxd sets before the user's (documented in docs/configuration.md).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> defaultProducerProperties();

// The version of the librdkafka the process runs with (rd_kafka_version_str(): the loaded
// library's, which may differ from the headers' when the wrong one is on the loader's path).
[[nodiscard]] std::string kafkaClientVersion();

// True when a librdkafka property's value must never be logged.
[[nodiscard]] bool isSecretProperty(std::string_view name);

}  // namespace outboxd::sink
