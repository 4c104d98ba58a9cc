#pragma once
// Every metric outboxd exports, declared in one place (names are part of the user contract in
// spec.md). Owns the prometheus-cpp registry. The relay thread updates the metrics; the HTTP
// thread reads them through collect(). prometheus-cpp's metrics are safe for that.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace outboxd::metrics {

class Metrics {
public:
    Metrics();

    [[nodiscard]] std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
    // Prometheus text exposition of every metric, with the process_* metrics of this process.
    [[nodiscard]] std::string render() const;

    // Adds the linked libraries' versions (name -> version) to outboxd_build_info.
    void setLibraryVersions(const std::map<std::string, std::string>& libraries);

    void eventPublished(std::string_view topic, std::size_t bytes, double latency_seconds);
    void eventFailed(std::string_view reason);
    // An invalid row published to the dead-letter topic instead of stopping the relay.
    void eventDeadLettered(std::string_view reason);
    // A reload of the typed-payload descriptor set, successful or not.
    void payloadReload(bool ok);
    void error(std::string_view stage, std::string_view kind);
    void skippedChange(std::string_view kind);
    void reconnect();
    void logicalMessage(bool transactional);
    // From the slot monitor's thread. The slot gauges exist only after the first check.
    void slotState(bool exists, bool active, const std::string& wal_status, double safe_wal_size,
                   std::uint64_t retained_bytes);
    void heartbeat(bool ok);

    void setInFlight(std::size_t n) { in_flight_.Set(static_cast<double>(n)); }
    void setConfirmed(std::uint64_t lsn) { confirmed_lsn_.Set(static_cast<double>(lsn)); }
    void setServerWalEnd(std::uint64_t wal_end) { server_wal_end_.Set(static_cast<double>(wal_end)); }
    void setLagBytes(std::uint64_t bytes) { lag_bytes_.Set(static_cast<double>(bytes)); }
    void setLagSeconds(double seconds) { lag_seconds_.Set(seconds); }
    void setStreaming(bool streaming) {
        streaming_.Set(streaming ? 1 : 0);
        streaming_flag_.store(streaming, std::memory_order_relaxed);
    }
    // Whether the Kafka producer has a broker connection; nullopt while unknown (no producer, or
    // none of its statistics yet).
    void setKafkaUp(std::optional<bool> up) {
        kafka_up_.Set(up.value_or(false) ? 1 : 0);
        kafka_up_flag_.store(up ? (*up ? 1 : 0) : -1, std::memory_order_relaxed);
    }

    // Health: the loop calls tick() on every turn; healthy() is true while it turned recently.
    void tick() { last_tick_ns_.store(now(), std::memory_order_relaxed); }
    // While connecting (CREATE_REPLICATION_SLOT waits for running transactions), the loop does
    // not turn but the process is healthy.
    void setConnecting(bool connecting) {
        tick();
        connecting_.store(connecting, std::memory_order_relaxed);
    }
    [[nodiscard]] bool healthy(std::chrono::seconds within = std::chrono::seconds(30)) const;
    [[nodiscard]] bool streaming() const { return streaming_flag_.load(std::memory_order_relaxed); }
    // Empty while ready (streaming, and a Kafka broker reachable); otherwise why not, for /readyz.
    [[nodiscard]] std::string notReadyReason() const;

    // Per-topic series kept at most; acknowledgements for further topics count under
    // topic="(other)" (not a legal Kafka topic name).
    static constexpr std::size_t kMaxTopicSeries = 1000;

private:
    static std::int64_t now();

    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& published_family_;
    prometheus::Counter& published_;
    prometheus::Family<prometheus::Counter>& published_by_topic_;
    prometheus::Family<prometheus::Counter>& published_bytes_by_topic_;
    prometheus::Family<prometheus::Counter>& failed_;
    prometheus::Family<prometheus::Counter>& dead_lettered_;
    prometheus::Family<prometheus::Counter>& payload_reloads_;
    prometheus::Family<prometheus::Counter>& errors_;
    prometheus::Family<prometheus::Counter>& skipped_;
    prometheus::Counter& reconnects_;
    prometheus::Family<prometheus::Counter>& messages_;
    prometheus::Family<prometheus::Gauge>& build_info_;
    prometheus::Gauge* build_info_series_ = nullptr;
    // Slot gauges: families registered at once, series added by the first slotState().
    prometheus::Family<prometheus::Gauge>& slot_retained_;
    prometheus::Family<prometheus::Gauge>& slot_safe_wal_size_;
    prometheus::Family<prometheus::Gauge>& slot_active_;
    prometheus::Family<prometheus::Gauge>& slot_wal_status_;
    prometheus::Family<prometheus::Gauge>& slot_last_check_;
    prometheus::Family<prometheus::Counter>& heartbeats_;
    prometheus::Gauge& lag_bytes_;
    prometheus::Gauge& lag_seconds_;
    prometheus::Gauge& confirmed_lsn_;
    prometheus::Gauge& server_wal_end_;
    prometheus::Gauge& in_flight_;
    prometheus::Gauge& streaming_;
    prometheus::Gauge& kafka_up_;
    prometheus::Histogram& latency_;
    // Per-topic counters, looked up once per topic (relay thread only); found by string_view, so
    // an acknowledgement costs no string copy.
    struct TopicHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::pair<prometheus::Counter*, prometheus::Counter*>, TopicHash,
                       std::equal_to<>>
        topic_counters_;
    std::atomic<std::int64_t> last_tick_ns_{0};
    std::atomic<bool> streaming_flag_{false};
    std::atomic<int> kafka_up_flag_{-1};  // -1 unknown, 0 down, 1 up
    std::atomic<bool> connecting_{false};
};

}  // namespace outboxd::metrics
