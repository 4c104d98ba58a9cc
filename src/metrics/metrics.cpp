#include "metrics/metrics.h"

#include <algorithm>
#include <ctime>
#include <iterator>

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include "metrics/process_metrics.h"

namespace outboxd::metrics {

namespace {

prometheus::Histogram::BucketBoundaries latencyBuckets() {
    return {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      published_family_(prometheus::BuildCounter()
                            .Name("outboxd_events_published_total")
                            .Help("Events acknowledged by Kafka")
                            .Register(*registry_)),
      published_(published_family_.Add({})),
      published_by_topic_(prometheus::BuildCounter()
                              .Name("outboxd_topic_events_published_total")
                              .Help("Events acknowledged by Kafka, by topic")
                              .Register(*registry_)),
      published_bytes_by_topic_(prometheus::BuildCounter()
                                    .Name("outboxd_topic_published_bytes_total")
                                    .Help("Bytes of record values acknowledged by Kafka, by topic")
                                    .Register(*registry_)),
      failed_(prometheus::BuildCounter()
                  .Name("outboxd_events_failed_total")
                  .Help("Events that could not be published, by reason")
                  .Register(*registry_)),
      dead_lettered_(prometheus::BuildCounter()
                         .Name("outboxd_events_dead_lettered_total")
                         .Help("Invalid outbox rows published to the dead-letter topic, by reason")
                         .Register(*registry_)),
      payload_reloads_(prometheus::BuildCounter()
                           .Name("outboxd_payload_reloads_total")
                           .Help("Reloads of payload.protobuf.descriptor_set, by result (ok, failed)")
                           .Register(*registry_)),
      errors_(prometheus::BuildCounter()
                  .Name("outboxd_errors_total")
                  .Help("Errors by stage (receiving, processing, sending) and kind")
                  .Register(*registry_)),
      skipped_(prometheus::BuildCounter()
                   .Name("outboxd_changes_skipped_total")
                   .Help("Changes on outbox tables that are not events (update, delete, truncate), by kind")
                   .Register(*registry_)),
      reconnects_(prometheus::BuildCounter()
                      .Name("outboxd_reconnects_total")
                      .Help("Replication sessions started after the first")
                      .Register(*registry_)
                      .Add({})),
      messages_(prometheus::BuildCounter()
                    .Name("outboxd_logical_messages_total")
                    .Help("Logical decoding messages (pg_logical_emit_message) received, by kind")
                    .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("outboxd_build_info")
                      .Help("Build information: outboxd's version and commit, and the linked libraries' versions")
                      .Register(*registry_)),
      slot_retained_(prometheus::BuildGauge()
                         .Name("outboxd_slot_retained_wal_bytes")
                         .Help("WAL the slot keeps on the server: pg_current_wal_lsn() - restart_lsn (absent until the "
                               "first slot check)")
                         .Register(*registry_)),
      slot_safe_wal_size_(prometheus::BuildGauge()
                              .Name("outboxd_slot_safe_wal_size_bytes")
                              .Help("pg_replication_slots.safe_wal_size: WAL that can still be written before the slot "
                                    "is lost (NaN when max_slot_wal_keep_size is unlimited; absent until the first "
                                    "slot check)")
                              .Register(*registry_)),
      slot_active_(prometheus::BuildGauge()
                       .Name("outboxd_slot_active")
                       .Help("1 when the slot exists and a walsender streams from it (absent until the first slot "
                             "check)")
                       .Register(*registry_)),
      slot_wal_status_(prometheus::BuildGauge()
                           .Name("outboxd_slot_wal_status")
                           .Help("pg_replication_slots.wal_status: 1 for the current status (reserved, extended, "
                                 "unreserved, lost; missing when the slot does not exist; absent until the first slot "
                                 "check)")
                           .Register(*registry_)),
      slot_last_check_(prometheus::BuildGauge()
                           .Name("outboxd_slot_last_check_timestamp_seconds")
                           .Help("Unix time of the last successful slot check (absent until the first)")
                           .Register(*registry_)),
      heartbeats_(prometheus::BuildCounter()
                      .Name("outboxd_heartbeats_total")
                      .Help("Heartbeat messages written, by result")
                      .Register(*registry_)),
      lag_bytes_(prometheus::BuildGauge()
                     .Name("outboxd_replication_lag_bytes")
                     .Help("Server WAL end minus the LSN confirmed to the slot")
                     .Register(*registry_)
                     .Add({})),
      lag_seconds_(prometheus::BuildGauge()
                       .Name("outboxd_replication_lag_seconds")
                       .Help("Age of the oldest received transaction whose events are not all confirmed (0 when none)")
                       .Register(*registry_)
                       .Add({})),
      confirmed_lsn_(prometheus::BuildGauge()
                         .Name("outboxd_confirmed_flush_lsn")
                         .Help("The LSN last confirmed to the slot, as a number")
                         .Register(*registry_)
                         .Add({})),
      server_wal_end_(prometheus::BuildGauge()
                          .Name("outboxd_server_wal_end_lsn")
                          .Help("The newest server WAL end seen in the replication stream, as a number")
                          .Register(*registry_)
                          .Add({})),
      in_flight_(prometheus::BuildGauge()
                     .Name("outboxd_kafka_in_flight_messages")
                     .Help("Produced but not yet acknowledged")
                     .Register(*registry_)
                     .Add({})),
      streaming_(prometheus::BuildGauge()
                     .Name("outboxd_streaming")
                     .Help("1 while the replication stream is open (Kafka: outboxd_kafka_up; /readyz needs both)")
                     .Register(*registry_)
                     .Add({})),
      kafka_up_(prometheus::BuildGauge()
                    .Name("outboxd_kafka_up")
                    .Help("1 while the Kafka producer has a broker connection (librdkafka's broker state, every "
                          "second)")
                    .Register(*registry_)
                    .Add({})),
      latency_(prometheus::BuildHistogram()
                   .Name("outboxd_event_latency_seconds")
                   .Help("Commit time to Kafka acknowledgement")
                   .Register(*registry_)
                   .Add({}, latencyBuckets())) {
    setLibraryVersions({});
    // Series that exist from the start, so dashboards and alerts see 0 rather than nothing.
    for (const char* reason : {"delivery", "producer_fatal", "invalid_row", "rejected"}) {
        failed_.Add({{"reason", reason}});
    }
    tick();
}

std::string Metrics::render() const {
    auto families = registry_->Collect();
    auto process = processMetricFamilies();
    std::ranges::move(process, std::back_inserter(families));
    std::string text = prometheus::TextSerializer().Serialize(families);
    // prometheus-cpp 1.0 writes "Nan"; the exposition format spells it "NaN".
    for (auto pos = text.find(" Nan\n"); pos != std::string::npos; pos = text.find(" Nan\n", pos)) {
        text.replace(pos + 1, 3, "NaN");
    }
    return text;
}

void Metrics::setLibraryVersions(const std::map<std::string, std::string>& libraries) {
    if (build_info_series_ != nullptr) build_info_.Remove(build_info_series_);
    std::map<std::string, std::string> labels{{"version", OUTBOXD_VERSION}, {"commit", OUTBOXD_COMMIT}};
    for (const auto& [name, version] : libraries) labels[name] = version;
    build_info_series_ = &build_info_.Add(labels);
    build_info_series_->Set(1);
}

std::string Metrics::notReadyReason() const {
    if (!streaming()) return "the replication stream is not open";
    switch (kafka_up_flag_.load(std::memory_order_relaxed)) {
        case 1: return "";
        case 0: return "no Kafka broker is reachable";
        default: return "Kafka's reachability is not known yet";
    }
}

void Metrics::eventPublished(std::string_view topic, std::size_t bytes, double latency_seconds) {
    published_.Increment();
    auto it = topic_counters_.find(topic);
    if (it == topic_counters_.end() && topic_counters_.size() >= kMaxTopicSeries) {
        it = topic_counters_.find(std::string_view("(other)"));
        if (it == topic_counters_.end()) {
            spdlog::warn("more than {} topics: acknowledgements of further topics are counted under "
                         "topic=\"(other)\" in outboxd_topic_events_published_total and "
                         "outboxd_topic_published_bytes_total",
                         kMaxTopicSeries);
            topic = "(other)";
        }
    }
    if (it == topic_counters_.end()) {
        std::string name(topic);
        auto* events = &published_by_topic_.Add({{"topic", name}});
        auto* byte_count = &published_bytes_by_topic_.Add({{"topic", name}});
        it = topic_counters_.emplace(std::move(name), std::make_pair(events, byte_count)).first;
    }
    it->second.first->Increment();
    it->second.second->Increment(static_cast<double>(bytes));
    latency_.Observe(latency_seconds);
}

void Metrics::eventFailed(std::string_view reason) { failed_.Add({{"reason", std::string(reason)}}).Increment(); }
void Metrics::payloadReload(bool ok) { payload_reloads_.Add({{"result", ok ? "ok" : "failed"}}).Increment(); }
void Metrics::eventDeadLettered(std::string_view reason) {
    dead_lettered_.Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::error(std::string_view stage, std::string_view kind) {
    errors_.Add({{"stage", std::string(stage)}, {"kind", std::string(kind)}}).Increment();
}

void Metrics::skippedChange(std::string_view kind) { skipped_.Add({{"kind", std::string(kind)}}).Increment(); }

void Metrics::reconnect() { reconnects_.Increment(); }

void Metrics::slotState(bool exists, bool active, const std::string& wal_status, double safe_wal_size,
                        std::uint64_t retained_bytes) {
    slot_active_.Add({}).Set(exists && active ? 1 : 0);
    slot_retained_.Add({}).Set(static_cast<double>(retained_bytes));
    slot_safe_wal_size_.Add({}).Set(safe_wal_size);
    slot_last_check_.Add({}).Set(static_cast<double>(std::time(nullptr)));
    for (const char* status : {"reserved", "extended", "unreserved", "lost", "missing"}) {
        bool current = exists ? wal_status == status : std::string_view(status) == "missing";
        slot_wal_status_.Add({{"status", status}}).Set(current ? 1 : 0);
    }
}

void Metrics::heartbeat(bool ok) { heartbeats_.Add({{"result", ok ? "ok" : "error"}}).Increment(); }

void Metrics::logicalMessage(bool transactional) {
    messages_.Add({{"transactional", transactional ? "true" : "false"}}).Increment();
}

std::int64_t Metrics::now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool Metrics::healthy(std::chrono::seconds within) const {
    if (connecting_.load(std::memory_order_relaxed)) return true;
    auto age = std::chrono::nanoseconds(now() - last_tick_ns_.load(std::memory_order_relaxed));
    return age < within;
}

}  // namespace outboxd::metrics
