#pragma once
// The relay: wiring and the event loop, nothing else.
//
//  Postgres walsender --CopyData--> cdc::ReplicationStream --bytes--> wire::parseServerMessage
//      --XLogData--> pgoutput::decode --Insert--> outbox::Router --OutboxEvent--> sink::KafkaSink
//      --Delivery--> cdc::Checkpointer --confirmed LSN--> StandbyStatusUpdate --> walsender
//
// One session is one replication connection and one Kafka producer. A transient error ends
// the session and the relay starts another after a backoff, from the LSN the slot has
// confirmed (events after it are sent again: at-least-once). A definite error, or a stop
// request, ends run(). Single-threaded: everything here runs on the caller's thread; only the
// metrics are read from the HTTP thread.

#include <atomic>
#include <cstdint>
#include <chrono>
#include <expected>

#include "cdc/lsn.h"
#include "common/error.h"
#include "config/config.h"
#include "metrics/metrics.h"

namespace outboxd::app {

class PayloadSet;

class Relay {
public:
    Relay(const config::Config& config, metrics::Metrics& metrics, const std::atomic<bool>& stop_requested);

    // The typed-payload set handed to each session's router, reloaded between rows when
    // `reload_requested` is set (SIGHUP) or its file changes. Optional; not owned.
    void setPayloadSet(PayloadSet* set, std::atomic<bool>* reload_requested) {
        payloads_ = set;
        reload_requested_ = reload_requested;
    }

    // Runs until a stop request (returns 0) or a definite error (logs it, returns 1).
    [[nodiscard]] int run();

    // The operator accepts, for this process, that a lost slot is recreated at the current WAL
    // position (--accept-slot-loss): the events it had not confirmed are not published.
    void acceptSlotLoss() { accept_slot_loss_ = true; }

private:
    class Session;

    const config::Config& config_;
    metrics::Metrics& metrics_;
    const std::atomic<bool>& stop_requested_;
    PayloadSet* payloads_ = nullptr;
    std::atomic<bool>* reload_requested_ = nullptr;
    bool accept_slot_loss_ = false;
    // The server's system identifier from the first session on: a reconnect must find the same
    // cluster (cdc::checkSameSystem).
    std::string system_id_;
    // The previous session's timeline and the LSN last confirmed to the slot: after a promotion
    // the slot found must be the synchronized one, not ahead of it (cdc::checkPromotedSlot).
    std::uint32_t timeline_ = 0;
    cdc::Lsn confirmed_;
};

}  // namespace outboxd::app
