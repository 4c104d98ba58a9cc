#pragma once
// Every metric outboxd exports, declared in one place (names are part of the user contract in
// spec.md). Owns the prometheus-cpp registry. The relay thread updates the metrics; the HTTP
// thread reads them through collect(). prometheus-cpp's metrics are safe for that.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
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
    // Prometheus text exposition of every metric.
    [[nodiscard]] std::string render() const;

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
    // From the slot monitor's thread.
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
    prometheus::Gauge& slot_retained_;
    prometheus::Gauge& slot_safe_wal_size_;
    prometheus::Gauge& slot_active_;
    prometheus::Family<prometheus::Gauge>& slot_wal_status_;
    prometheus::Family<prometheus::Counter>& heartbeats_;
    prometheus::Gauge& lag_bytes_;
    prometheus::Gauge& lag_seconds_;
    prometheus::Gauge& confirmed_lsn_;
    prometheus::Gauge& server_wal_end_;
    prometheus::Gauge& in_flight_;
    prometheus::Gauge& streaming_;
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
    std::atomic<bool> connecting_{false};
};

}  // namespace outboxd::metrics
