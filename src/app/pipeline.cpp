#include "app/pipeline.h"

#include <algorithm>
#include <variant>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdc/wire/copy_data.h"
#include "outboxd/v1/event.pb.h"

namespace outboxd::app {

namespace {
// A dead-letter record is known by its outboxd.error header, never by its topic: routing.topic
// may render the dead-letter topic's name for an ordinary event.
bool isDeadLetterRecord(const outbox::OutboxEvent& event) {
    return std::ranges::any_of(event.extra_headers, [](const auto& h) { return h.first == "outboxd.error"; });
}
}  // namespace


namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};

std::int64_t unixMicrosNow() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

Pipeline::Pipeline(const config::Config& config, sink::Sink& sink, metrics::Metrics& metrics, int proto_version,
                   cdc::Lsn start)
    : config_(config), sink_(sink), metrics_(metrics), router_(config), checkpointer_(start), server_wal_end_(start) {
    decode_ctx_.proto_version = proto_version;
}

std::optional<cdc::PgTimestamp> Pipeline::oldestUnconfirmedCommit() const {
    if (checkpointer_.idle()) return std::nullopt;
    return checkpointer_.oldestCommitTime();
}

std::expected<void, Error> Pipeline::serveDeliveries(std::chrono::milliseconds timeout) {
    deliveries_.clear();
    auto polled = sink_.poll(timeout, deliveries_);
    if (!polled) {
        metrics_.eventFailed("producer_fatal");
        return std::unexpected(polled.error());
    }
    if (deliveries_.empty()) return {};
    const std::int64_t now_us = unixMicrosNow();
    for (const auto& d : deliveries_) {
        if (!d.ok && d.permanent && d.reason == "too_large" &&
            config_.invalid_rows.action == config::InvalidRowAction::DeadLetter &&
            isDeadLetterRecord(d.record) && !d.record.value.empty()) {
            outbox::OutboxEvent dead = d.record;
            omitPayload(dead, fmt::format("Kafka refused it for topic {}: {}", d.topic, d.error));
            dead_letters_.emplace_back(std::move(dead), d.token);
            continue;
        }
        if (!d.ok && d.permanent && config_.invalid_rows.action == config::InvalidRowAction::DeadLetter &&
            !isDeadLetterRecord(d.record)) {
            if (auto ok = deadLetterRefused(d.record, d.token, d.reason.empty() ? "rejected" : d.reason,
                                            fmt::format("Kafka refused the record for topic {}: {}", d.topic, d.error));
                !ok) {
                return ok;
            }
            continue;
        }
        if (!d.ok && d.permanent) {
            metrics_.eventFailed("rejected");
            return std::unexpected(Error{ErrorKind::SinkRejected,
                                         fmt::format("Kafka refused an event for topic {} for good: {}. Fix the "
                                                     "broker or topic setting it names (max.message.bytes, ACLs), "
                                                     "then restart; the slot stays at {}",
                                                     d.topic, d.error, checkpointer_.confirmed())});
        }
        if (!d.ok) {
            metrics_.eventFailed("delivery");
            return std::unexpected(Error{ErrorKind::SinkDelivery,
                                         fmt::format("Kafka did not acknowledge an event for topic {}: {}; "
                                                     "resending from the last confirmed LSN {}",
                                                     d.topic, d.error, checkpointer_.confirmed())});
        }
        auto commit_time = checkpointer_.commitTime(d.token);
        if (auto ok = checkpointer_.acknowledge(d.token); !ok) {
            return std::unexpected(Error{ErrorKind::InvariantViolated, ok.error()});
        }
        double latency = commit_time.micros != 0 ? static_cast<double>(now_us - commit_time.unixMicros()) / 1e6 : 0;
        metrics_.eventPublished(d.topic, d.bytes, latency < 0 ? 0 : latency);
    }
    return flushDeadLetters();
}

std::expected<void, Error> Pipeline::deadLetterRefused(const outbox::OutboxEvent& refused, std::uint64_t token,
                                                       std::string_view reason, std::string_view what) {
    outbox::OutboxEvent dead;
    dead.topic = config_.invalid_rows.dead_letter_topic;
    dead.key = refused.key;
    dead.key_is_null = refused.key_is_null;
    dead.id = refused.id;
    dead.type = refused.type;
    dead.aggregate_type = refused.aggregate_type;
    // The value is the row's payload as published (the envelope's payload field).
    outboxd::v1::Event envelope;
    std::string lsn;
    std::string table;
    // (With routing.value: payload the record holds the payload alone, and where the row came
    // from is not in it: the dead-letter record's outboxd.lsn and outboxd.table are then empty.)
    if (config_.routing.value == config::ValueMode::Envelope && !refused.value_is_null && !refused.value.empty() &&
        envelope.ParseFromString(refused.value)) {
        dead.value = envelope.payload();
        lsn = fmt::format("{}", cdc::Lsn{envelope.source().lsn()});
        table = fmt::format("{}.{}", envelope.source().schema(), envelope.source().table());
    } else {
        dead.value = refused.value;
    }
    dead.extra_headers.emplace_back("outboxd.error", fmt::format("event {}: {}", refused.id, what));
    dead.extra_headers.emplace_back("outboxd.lsn", lsn);
    dead.extra_headers.emplace_back("outboxd.table", table);
    metrics_.eventDeadLettered(reason);
    spdlog::warn("dead-lettered to {} (event {}, table {}, LSN {}): {}", dead.topic, refused.id, table, lsn, what);
    dead_letters_.emplace_back(std::move(dead), token);
    return {};
}

void Pipeline::omitPayload(outbox::OutboxEvent& dead, std::string_view why) {
    const std::size_t size = dead.value.size();
    dead.value.clear();
    std::string table;
    std::string lsn;
    for (auto& [name, value] : dead.extra_headers) {
        if (name == "outboxd.error") {
            value += fmt::format("; the payload ({} bytes) is left out of this record, too large for the "
                                 "dead-letter topic as well: read it from the outbox row",
                                 size);
        } else if (name == "outboxd.table") {
            table = value;
        } else if (name == "outboxd.lsn") {
            lsn = value;
        }
    }
    dead.extra_headers.emplace_back("outboxd.payload_omitted", std::to_string(size));
    spdlog::warn("dead-letter record of event {} (table {}, LSN {}) sent without its {}-byte payload: {}", dead.id,
                 table, lsn, size, why);
}

std::expected<void, Error> Pipeline::flushDeadLetters() {
    while (!dead_letters_.empty()) {
        auto& [event, token] = dead_letters_.front();
        auto status = sink_.produce(event, token);
        if (!status && status.error().kind == ErrorKind::SinkRejected && !event.value.empty()) {
            omitPayload(event, status.error().message);
            continue;
        }
        if (!status) {
            metrics_.eventFailed("rejected");
            Error error = status.error();
            error.message = fmt::format("could not dead-letter event {} to {}: {}; the slot stays at {}", event.id,
                                        event.topic, error.message, checkpointer_.confirmed());
            return std::unexpected(std::move(error));
        }
        if (*status == sink::ProduceStatus::QueueFull) return {};
        dead_letters_.pop_front();
    }
    return {};
}

std::expected<void, Error> Pipeline::handleFrame(std::span<const std::byte> frame) {
    auto parsed = cdc::wire::parseServerMessage(frame);
    if (!parsed) {
        return std::unexpected(Error{ErrorKind::SourceWire,
                                     fmt::format("malformed replication frame ({} bytes): {}; reconnecting from {}",
                                                 parsed.error().size, parsed.error().detail,
                                                 checkpointer_.confirmed())});
    }
    if (auto* keepalive = std::get_if<cdc::wire::PrimaryKeepalive>(&*parsed)) {
        if (keepalive->wal_end > server_wal_end_) server_wal_end_ = keepalive->wal_end;
        if (!held_ && !open_txn_) checkpointer_.observeServerPosition(keepalive->wal_end);
        if (keepalive->reply_requested) reply_requested_ = true;
        return {};
    }
    auto& xlog = std::get<cdc::wire::XLogData>(*parsed);
    if (xlog.wal_end > server_wal_end_) server_wal_end_ = xlog.wal_end;
    decode_ctx_.lsn = xlog.wal_start;
    auto message = cdc::pgoutput::decode(xlog.data, decode_ctx_);
    if (!message) {
        const auto& e = message.error();
        return std::unexpected(Error{
            ErrorKind::Decode,
            fmt::format("could not decode the pgoutput message at {} ('{}', offset {}): {}: {}. This is a bug or an "
                        "unsupported server; report it with the PostgreSQL version. The slot stays at {}",
                        xlog.wal_start, e.message_type == 0 ? ' ' : e.message_type, e.offset,
                        cdc::pgoutput::toString(e.kind), e.detail, checkpointer_.confirmed())});
    }
    return handleMessage(*message, xlog.wal_start);
}

std::expected<void, Error> Pipeline::handleMessage(cdc::pgoutput::Message& message, cdc::Lsn lsn) {
    namespace pg = cdc::pgoutput;
    auto unexpected = [&](std::string_view what) {
        return std::unexpected(Error{ErrorKind::Decode,
                                     fmt::format("unexpected {} at {}: outboxd did not ask for it", what, lsn)});
    };
    auto skipped = [&](std::string_view kind) -> std::expected<void, Error> {
        metrics_.skippedChange(kind);
        if (skips_logged_++ == 0) {
            spdlog::info("skipping {} on an outbox table at {} (only inserts are events; further skips are logged at "
                         "debug level)",
                         kind, lsn);
        } else {
            spdlog::debug("skipping {} on an outbox table at {}", kind, lsn);
        }
        return {};
    };
    return std::visit(
        Overloaded{
            [&](pg::Begin& begin) -> std::expected<void, Error> {
                if (open_txn_) return unexpected("Begin inside a transaction");
                open_txn_ = checkpointer_.begin(begin.commit_time);
                skipping_ = skip_rule_.skip(begin.final_lsn);
                if (skipping_) {
                    ++skipped_txns_;
                    metrics_.skippedChange("checkpointed_transaction");
                    if (skipped_txns_ == 1) {
                        spdlog::info("skipping the transaction committed at {} (xid {}): Kafka already holds it (the "
                                     "checkpoint's commit LSN is {}); every transaction up to there is skipped",
                                     begin.final_lsn, begin.xid.value, skip_rule_.commitLsn());
                    }
                } else if (skipped_txns_ > 0 && !logged_skips_) {
                    logged_skips_ = true;
                    spdlog::info("skipped {} transactions that Kafka already held; delivering from the one committed "
                                 "at {}",
                                 skipped_txns_, begin.final_lsn);
                }
                change_ctx_.commit_lsn = begin.final_lsn;
                change_ctx_.xid = begin.xid;
                change_ctx_.commit_time = begin.commit_time;
                return {};
            },
            [&](pg::Commit& commit) -> std::expected<void, Error> {
                if (!open_txn_) return unexpected("Commit outside a transaction");
                auto ok = checkpointer_.commit(*open_txn_, commit.end_lsn);
                open_txn_.reset();
                skipping_ = false;
                last_commit_ = LastCommit{change_ctx_.commit_lsn, commit.end_lsn};
                if (!ok) return std::unexpected(Error{ErrorKind::InvariantViolated, ok.error()});
                return {};
            },
            [&](pg::Relation& relation) -> std::expected<void, Error> {
                auto known = router_.onRelation(relation);
                if (!known) {
                    Error error = known.error();
                    error.table = fmt::format("{}.{}", relation.schema, relation.name);
                    error.lsn = fmt::format("{}", lsn);
                    return std::unexpected(std::move(error));
                }
                if (*known) table_names_[relation.id.value] = fmt::format("{}.{}", relation.schema, relation.name);
                spdlog::debug("relation {} = {}.{} ({} columns){}", relation.id.value, relation.schema, relation.name,
                              relation.columns.size(), *known ? ", an outbox table" : "");
                return {};
            },
            [&](pg::Insert& insert) -> std::expected<void, Error> {
                if (!open_txn_) return unexpected("Insert outside a transaction");
                if (!router_.isOutbox(insert.relation) || skipping_) return {};
                change_ctx_.lsn = lsn;
                return routeInsert(insert, lsn);
            },
            [&](pg::Update& update) -> std::expected<void, Error> {
                const auto named = table_names_.find(update.relation.value);
                if (named == table_names_.end()) return skipped("update");  // not an outbox table
                metrics_.skippedChange("update");
                const std::string& table = named->second;
                const auto policy = config_.routing.on_update;
                if (policy == config::OnUpdate::Fatal) {
                    Error error{ErrorKind::InvalidRow,
                                fmt::format("an UPDATE of {} at {}: only inserts are events, and routing.on_update is "
                                            "fatal; outboxd stops before confirming past it (set on_update: warn to "
                                            "skip updates, or publish inserts only)",
                                            table, lsn)};
                    error.table = table;
                    error.lsn = fmt::format("{}", lsn);
                    return std::unexpected(std::move(error));
                }
                if (updates_skipped_++ % 1000 == 0) {
                    spdlog::log(policy == config::OnUpdate::Error ? spdlog::level::err : spdlog::level::warn,
                                "an UPDATE of {} at {} is skipped: only inserts are events ({} updates skipped since "
                                "start; routing.on_update)",
                                table, lsn, updates_skipped_);
                }
                return {};
            },
            [&](pg::Delete&) { return skipped("delete"); },
            [&](pg::Truncate&) { return skipped("truncate"); },
            [&](pg::LogicalMessage& m) -> std::expected<void, Error> {
                metrics_.logicalMessage(m.transactional);
                const auto& prefixes = config_.outbox.messages.prefixes;
                if (std::ranges::find(prefixes, m.prefix) == prefixes.end()) {
                    if (m.prefix != "outboxd.heartbeat" && !warned_messages_) {
                        warned_messages_ = true;
                        spdlog::warn("logical decoding message with prefix '{}' at {} is counted but is not an "
                                     "event: its prefix is not in source.outbox.messages.prefixes (logged once)",
                                     m.prefix, lsn);
                    }
                    return {};
                }
                if (skipping_ && m.transactional) return {};
                return handleEventMessage(m, lsn);
            },
            [&](pg::Origin&) -> std::expected<void, Error> { return {}; },
            [&](pg::Type&) -> std::expected<void, Error> { return {}; },
            [&](auto&) -> std::expected<void, Error> { return unexpected("streaming or two-phase message"); },
        },
        message);
}

std::expected<void, Error> Pipeline::routeInsert(const cdc::pgoutput::Insert& insert, cdc::Lsn lsn) {
    auto routed = router_.route(insert, change_ctx_, event_);
    if (!routed && routed.error().kind == ErrorKind::InvalidRow &&
        config_.invalid_rows.action == config::InvalidRowAction::DeadLetter) {
        const std::string reason(router_.lastInvalidReason());
        if (auto dead = router_.deadLetter(insert, change_ctx_, routed.error().message, event_); !dead) {
            return std::unexpected(dead.error());
        }
        metrics_.eventDeadLettered(reason);
        spdlog::warn("dead-lettered to {}: {}", config_.invalid_rows.dead_letter_topic, routed.error().message);
        held_ = *open_txn_;
        return produceHeld();
    }
    if (!routed) {
        metrics_.eventFailed("invalid_row");
        Error error = routed.error();
        if (auto it = table_names_.find(insert.relation.value); it != table_names_.end()) {
            error.table = it->second;
        }
        error.lsn = fmt::format("{}", lsn);
        return std::unexpected(std::move(error));
    }
    if (event_.occurred_from_commit_time && !warned_timestamp_) {
        warned_timestamp_ = true;
        spdlog::warn("event {} at {}: the timestamp column holds a value that is not an ISO timestamp "
                     "(e.g. infinity); the commit time is used instead (logged once)",
                     event_.id, lsn);
    }
    held_ = *open_txn_;
    return produceHeld();
}

std::expected<void, Error> Pipeline::handleEventMessage(const cdc::pgoutput::LogicalMessage& m, cdc::Lsn lsn) {
    if (!m.transactional) {
        if (config_.outbox.messages.non_transactional == config::NonTransactional::Refuse) {
            metrics_.eventFailed("invalid_row");
            Error error{ErrorKind::InvalidRow,
                        fmt::format("a non-transactional logical message with prefix '{}' at {}: it belongs to no "
                                    "transaction (it is decoded even when its writer rolls back), so it carries no "
                                    "outbox guarantee; write it with pg_logical_emit_message(true, ...), or set "
                                    "source.outbox.messages.non_transactional: accept. The slot stays at {}",
                                    m.prefix, lsn, checkpointer_.confirmed())};
            error.table = fmt::format("pg_logical_emit_message.{}", m.prefix);
            error.lsn = fmt::format("{}", lsn);
            return std::unexpected(std::move(error));
        }
        if (open_txn_) {
            return std::unexpected(Error{ErrorKind::Decode,
                                         fmt::format("non-transactional logical message at {} inside a transaction",
                                                     lsn)});
        }
        // An event of its own: a transaction of one, ending at the message's LSN (a restart from
        // there decodes the message again: at least once).
        const auto now = cdc::PgTimestamp::fromUnixMicros(unixMicrosNow());
        open_txn_ = checkpointer_.begin(now);
        own_commit_ = lsn;
        change_ctx_.commit_lsn = lsn;
        change_ctx_.xid = cdc::Xid{0};
        change_ctx_.commit_time = now;
    } else if (!open_txn_) {
        return std::unexpected(Error{ErrorKind::Decode,
                                     fmt::format("transactional logical message at {} outside a transaction", lsn)});
    }
    change_ctx_.lsn = lsn;
    auto routed = [&]() -> std::expected<void, Error> {
        auto row = router_.messageRow(m, change_ctx_, message_row_);
        if (row) {
            auto& name = table_names_[message_row_.relation.value];
            if (name.empty()) name = fmt::format("pg_logical_emit_message.{}", m.prefix);
            return routeInsert(message_row_, lsn);
        }
        if (row.error().kind == ErrorKind::InvalidRow &&
            config_.invalid_rows.action == config::InvalidRowAction::DeadLetter) {
            router_.messageDeadLetter(m, change_ctx_, row.error().message, event_);
            metrics_.eventDeadLettered(router_.lastInvalidReason());
            spdlog::warn("dead-lettered to {}: {}", config_.invalid_rows.dead_letter_topic, row.error().message);
            held_ = *open_txn_;
            return produceHeld();
        }
        metrics_.eventFailed("invalid_row");
        Error error = row.error();
        error.table = fmt::format("pg_logical_emit_message.{}", m.prefix);
        error.lsn = fmt::format("{}", lsn);
        return std::unexpected(std::move(error));
    }();
    if (!routed) return routed;
    return finishOwnTransaction();
}

std::expected<void, Error> Pipeline::finishOwnTransaction() {
    // Only once the message's record is in the checkpointer (not held by a full queue), or the
    // transaction could be confirmed without it.
    if (!own_commit_ || held_) return {};
    auto ok = checkpointer_.commit(*open_txn_, *own_commit_);
    open_txn_.reset();
    own_commit_.reset();
    if (!ok) return std::unexpected(Error{ErrorKind::InvariantViolated, ok.error()});
    return {};
}

std::expected<void, Error> Pipeline::retryHeld() {
    if (auto ok = flushDeadLetters(); !ok) return ok;
    if (!held_ || !dead_letters_.empty()) return {};
    if (auto ok = produceHeld(); !ok) return ok;
    return finishOwnTransaction();
}

std::expected<void, Error> Pipeline::produceHeld() {
    auto status = sink_.produce(event_, *held_);
    if (!status && status.error().kind == ErrorKind::SinkRejected &&
        config_.invalid_rows.action == config::InvalidRowAction::DeadLetter &&
        isDeadLetterRecord(event_) && !event_.value.empty()) {
        // An invalid row's dead-letter record, itself over the producer's message.max.bytes.
        omitPayload(event_, status.error().message);
        status = sink_.produce(event_, *held_);
    }
    if (!status && status.error().kind == ErrorKind::SinkRejected &&
        config_.invalid_rows.action == config::InvalidRowAction::DeadLetter &&
        !isDeadLetterRecord(event_)) {
        // Refused at produce() (larger than the producer's message.max.bytes): dead-lettered
        // under the row's token, confirmed once the dead-letter record is acknowledged.
        checkpointer_.addEvent(*held_);
        const auto token = *held_;
        held_.reset();
        const std::string_view reason =
            event_.partition >= 0 && status.error().message.find("does not exist in topic") != std::string::npos
                ? "bad_partition"
                : "too_large";
        if (auto ok = deadLetterRefused(event_, token, reason, status.error().message); !ok) return ok;
        return flushDeadLetters();
    }
    if (!status) {
        metrics_.eventFailed(status.error().kind == ErrorKind::SinkRejected ? "rejected" : "delivery");
        return std::unexpected(status.error());
    }
    if (*status == sink::ProduceStatus::QueueFull) return {};
    checkpointer_.addEvent(*held_);
    held_.reset();
    return {};
}

}  // namespace outboxd::app
