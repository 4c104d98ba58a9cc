#include "metrics/metrics.h"

#include <prometheus/text_serializer.h>

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
                                    .Name("outboxd_topic_bytes_published_total")
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
      slot_retained_(prometheus::BuildGauge()
                         .Name("outboxd_slot_retained_wal_bytes")
                         .Help("WAL the slot keeps on the server: pg_current_wal_lsn() - restart_lsn")
                         .Register(*registry_)
                         .Add({})),
      slot_safe_wal_size_(prometheus::BuildGauge()
                              .Name("outboxd_slot_safe_wal_size_bytes")
                              .Help("pg_replication_slots.safe_wal_size: WAL that can still be written before the slot "
                                    "is lost (NaN when max_slot_wal_keep_size is unlimited)")
                              .Register(*registry_)
                              .Add({})),
      slot_active_(prometheus::BuildGauge()
                       .Name("outboxd_slot_active")
                       .Help("1 when the slot exists and a walsender streams from it")
                       .Register(*registry_)
                       .Add({})),
      slot_wal_status_(prometheus::BuildGauge()
                           .Name("outboxd_slot_wal_status")
                           .Help("pg_replication_slots.wal_status: 1 for the current status (reserved, extended, "
                                 "unreserved, lost; missing when the slot does not exist)")
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
                     .Help("1 while the replication stream is open and Kafka is reachable")
                     .Register(*registry_)
                     .Add({})),
      latency_(prometheus::BuildHistogram()
                   .Name("outboxd_event_latency_seconds")
                   .Help("Commit time to Kafka acknowledgement")
                   .Register(*registry_)
                   .Add({}, latencyBuckets())) {
    prometheus::BuildGauge()
        .Name("outboxd_build_info")
        .Help("Build information")
        .Register(*registry_)
        .Add({{"version", OUTBOXD_VERSION}})
        .Set(1);
    // Series that exist from the start, so dashboards and alerts see 0 rather than nothing.
    for (const char* reason : {"delivery", "producer_fatal", "invalid_row", "rejected"}) {
        failed_.Add({{"reason", reason}});
    }
    tick();
}

std::string Metrics::render() const {
    return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::eventPublished(std::string_view topic, std::size_t bytes, double latency_seconds) {
    published_.Increment();
    auto it = topic_counters_.find(topic);
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
    slot_active_.Set(exists && active ? 1 : 0);
    slot_retained_.Set(static_cast<double>(retained_bytes));
    slot_safe_wal_size_.Set(safe_wal_size);
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
