#include "app/relay.h"

#include <poll.h>

#include <optional>
#include <random>
#include <thread>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdc/checkpointer.h"
#include "cdc/pgoutput/decoder.h"
#include "cdc/replication_stream.h"
#include "cdc/wire/copy_data.h"
#include "outbox/router.h"
#include "sink/kafka_sink.h"

namespace outboxd::app {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};

std::string_view stageOf(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::SourceConnect:
        case ErrorKind::SourceStream:
        case ErrorKind::SourceWire:
        case ErrorKind::SlotInUse:
        case ErrorKind::SlotMissing:
        case ErrorKind::SlotInvalidated:
        case ErrorKind::SlotMismatch:
        case ErrorKind::PublicationMissing:
        case ErrorKind::SourcePermission:
        case ErrorKind::SourceUnsupported:
            return "receiving";
        case ErrorKind::Decode:
        case ErrorKind::MappedColumnMissing:
        case ErrorKind::InvalidRow:
        case ErrorKind::InvariantViolated:
            return "processing";
        case ErrorKind::SinkCreate:
        case ErrorKind::SinkDelivery:
        case ErrorKind::SinkFatal:
        case ErrorKind::SinkRejected:
            return "sending";
    }
    return "unknown";
}

std::int64_t unixMicrosNow() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// One replication connection and one producer, from open to stop or error.
class Relay::Session {
public:
    Session(Relay& relay) : relay_(relay), config_(relay.config_), metrics_(relay.metrics_), router_(config_) {}

    // Returns {} after a clean stop, an error otherwise. `streamed` tells whether it got as far
    // as streaming (the backoff restarts then).
    std::expected<void, Error> run(bool& streamed);

private:
    std::expected<void, Error> handleFrame(std::span<const std::byte> frame);
    std::expected<void, Error> handleMessage(cdc::pgoutput::Message& message, cdc::Lsn lsn);
    std::expected<void, Error> produce();
    std::expected<void, Error> serveDeliveries(std::chrono::milliseconds timeout);
    std::expected<void, Error> sendStatus(bool reply_requested);
    std::expected<void, Error> maybeSendStatus();
    void updateGauges();
    // Waits up to `timeout` for deliveries to drain, then confirms what was delivered.
    void drainAndConfirm(std::chrono::milliseconds timeout);

    Relay& relay_;
    const config::Config& config_;
    metrics::Metrics& metrics_;
    outbox::Router router_;
    std::unique_ptr<sink::KafkaSink> sink_;
    std::unique_ptr<cdc::ReplicationStream> stream_;
    cdc::Checkpointer checkpointer_;
    cdc::pgoutput::DecodeContext decode_ctx_;

    std::optional<cdc::Checkpointer::TxnSerial> open_txn_;
    outbox::ChangeContext change_ctx_;
    outbox::OutboxEvent event_;
    // Invariant: when set, event_ holds a routed record the sink refused with QueueFull; nothing
    // more is read from the replication stream until it is queued.
    std::optional<cdc::Checkpointer::TxnSerial> pending_;
    std::vector<sink::Delivery> deliveries_;

    cdc::Lsn server_wal_end_;
    cdc::Lsn last_sent_confirmed_;
    Clock::time_point last_status_sent_{};
    bool reply_requested_ = false;
    std::uint64_t skipped_logged_ = 0;
};

std::expected<void, Error> Relay::Session::run(bool& streamed) {
    streamed = false;
    auto sink = sink::KafkaSink::create(config_.kafka);
    if (!sink) return std::unexpected(sink.error());
    sink_ = std::move(*sink);

    cdc::StreamOptions options{config_.postgres.dsn,
                               config_.postgres.slot,
                               config_.postgres.publication,
                               config_.postgres.create_slot,
                               config_.postgres.create_publication,
                               config_.outbox.tables,
                               4};
    auto stream = cdc::ReplicationStream::open(options);
    if (!stream) return std::unexpected(stream.error());
    stream_ = std::move(*stream);
    const auto& info = stream_->info();
    decode_ctx_.proto_version = info.proto_version;
    checkpointer_.reset(info.start_lsn);
    last_sent_confirmed_ = info.start_lsn;
    server_wal_end_ = info.start_lsn;
    streamed = true;
    metrics_.setStreaming(true);
    metrics_.setConfirmed(info.start_lsn.value());
    spdlog::info("streaming from slot {} at {} (PostgreSQL {}, pgoutput protocol {}, publication {})",
                 config_.postgres.slot, info.start_lsn, info.server_version, info.proto_version,
                 config_.postgres.publication);

    const auto status_interval = config_.postgres.status_interval;
    while (true) {
        metrics_.tick();
        if (relay_.stop_requested_.load(std::memory_order_relaxed)) {
            spdlog::info("stop requested: delivering {} in-flight events, then confirming", sink_->inFlight());
            drainAndConfirm(config_.kafka.shutdown_timeout);
            stream_->close();
            metrics_.setStreaming(false);
            return {};
        }
        if (auto ok = serveDeliveries(0ms); !ok) return std::unexpected(ok.error());

        if (pending_) {
            if (auto ok = produce(); !ok) {
                drainAndConfirm(config_.kafka.shutdown_timeout);
                return std::unexpected(ok.error());
            }
        }
        bool read_any = false;
        for (int i = 0; i < 4096 && !pending_; ++i) {
            auto frame = stream_->next();
            if (!frame) return std::unexpected(frame.error());
            if (!frame->has_value()) break;
            read_any = true;
            if (auto ok = handleFrame(**frame); !ok) {
                if (!isRetriable(ok.error().kind)) drainAndConfirm(config_.kafka.shutdown_timeout);
                return std::unexpected(ok.error());
            }
        }
        if (auto ok = maybeSendStatus(); !ok) return std::unexpected(ok.error());
        updateGauges();
        if (read_any && !pending_) continue;

        auto until_status = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_status_sent_ + status_interval - Clock::now());
        int timeout_ms = static_cast<int>(std::clamp<std::int64_t>(until_status.count(), 0, 100));
        std::array<pollfd, 2> fds{};
        nfds_t n = 0;
        fds[n++] = pollfd{sink_->eventFd(), POLLIN, 0};
        if (!pending_) {
            auto flushed = stream_->flush();
            if (!flushed) return std::unexpected(flushed.error());
            fds[n++] = pollfd{stream_->socket(), static_cast<short>(POLLIN | (*flushed ? 0 : POLLOUT)), 0};
        }
        ::poll(fds.data(), n, timeout_ms);
    }
}

std::expected<void, Error> Relay::Session::serveDeliveries(std::chrono::milliseconds timeout) {
    deliveries_.clear();
    auto polled = sink_->poll(timeout, deliveries_);
    if (!polled) {
        metrics_.eventFailed("producer_fatal");
        return std::unexpected(polled.error());
    }
    if (deliveries_.empty()) return {};
    const std::int64_t now_us = unixMicrosNow();
    for (const auto& d : deliveries_) {
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
    return {};
}

std::expected<void, Error> Relay::Session::handleFrame(std::span<const std::byte> frame) {
    auto parsed = cdc::wire::parseServerMessage(frame);
    if (!parsed) {
        return std::unexpected(Error{ErrorKind::SourceWire,
                                     fmt::format("malformed replication frame ({} bytes): {}; reconnecting from {}",
                                                 parsed.error().size, parsed.error().detail,
                                                 checkpointer_.confirmed())});
    }
    if (auto* keepalive = std::get_if<cdc::wire::PrimaryKeepalive>(&*parsed)) {
        if (keepalive->wal_end > server_wal_end_) server_wal_end_ = keepalive->wal_end;
        if (!pending_ && !open_txn_) checkpointer_.observeServerPosition(keepalive->wal_end);
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

std::expected<void, Error> Relay::Session::handleMessage(cdc::pgoutput::Message& message, cdc::Lsn lsn) {
    namespace pg = cdc::pgoutput;
    auto unexpected = [&](std::string_view what) {
        return std::unexpected(Error{ErrorKind::Decode,
                                     fmt::format("unexpected {} at {}: outboxd did not ask for it", what, lsn)});
    };
    auto skipped = [&](std::string_view kind) -> std::expected<void, Error> {
        metrics_.skippedChange(kind);
        if (skipped_logged_++ == 0) {
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
                change_ctx_.commit_lsn = begin.final_lsn;
                change_ctx_.xid = begin.xid;
                change_ctx_.commit_time = begin.commit_time;
                return {};
            },
            [&](pg::Commit& commit) -> std::expected<void, Error> {
                if (!open_txn_) return unexpected("Commit outside a transaction");
                auto ok = checkpointer_.commit(*open_txn_, commit.end_lsn);
                open_txn_.reset();
                if (!ok) return std::unexpected(Error{ErrorKind::InvariantViolated, ok.error()});
                return {};
            },
            [&](pg::Relation& relation) -> std::expected<void, Error> {
                auto known = router_.onRelation(relation);
                if (!known) return std::unexpected(known.error());
                spdlog::debug("relation {} = {}.{} ({} columns){}", relation.id.value, relation.schema, relation.name,
                              relation.columns.size(), *known ? ", an outbox table" : "");
                return {};
            },
            [&](pg::Insert& insert) -> std::expected<void, Error> {
                if (!open_txn_) return unexpected("Insert outside a transaction");
                if (!router_.isOutbox(insert.relation)) return {};
                change_ctx_.lsn = lsn;
                auto routed = router_.route(insert, change_ctx_, event_);
                if (!routed) {
                    metrics_.eventFailed("invalid_row");
                    return std::unexpected(routed.error());
                }
                pending_ = *open_txn_;
                return produce();
            },
            [&](pg::Update&) { return skipped("update"); },
            [&](pg::Delete&) { return skipped("delete"); },
            [&](pg::Truncate&) { return skipped("truncate"); },
            [&](pg::LogicalMessage& m) -> std::expected<void, Error> {
                metrics_.skippedChange(m.transactional ? "message_transactional" : "message");
                return {};
            },
            [&](pg::Origin&) -> std::expected<void, Error> { return {}; },
            [&](pg::Type&) -> std::expected<void, Error> { return {}; },
            [&](auto&) -> std::expected<void, Error> { return unexpected("streaming or two-phase message"); },
        },
        message);
}

std::expected<void, Error> Relay::Session::produce() {
    auto status = sink_->produce(event_, *pending_);
    if (!status) {
        metrics_.eventFailed(toString(status.error().kind));
        return std::unexpected(status.error());
    }
    if (*status == sink::ProduceStatus::QueueFull) return {};
    checkpointer_.addEvent(*pending_);
    pending_.reset();
    return {};
}

std::expected<void, Error> Relay::Session::maybeSendStatus() {
    auto now = Clock::now();
    bool due = now - last_status_sent_ >= config_.postgres.status_interval;
    bool advanced = checkpointer_.confirmed() != last_sent_confirmed_ && now - last_status_sent_ >= 100ms;
    if (reply_requested_ || due || advanced) return sendStatus(false);
    return {};
}

std::expected<void, Error> Relay::Session::sendStatus(bool reply_requested) {
    cdc::Lsn confirmed = checkpointer_.confirmed();
    cdc::wire::StandbyStatusUpdate update{confirmed, confirmed, confirmed,
                                          cdc::PgTimestamp::fromUnixMicros(unixMicrosNow()), reply_requested};
    if (auto ok = stream_->sendStatus(update); !ok) return ok;
    if (confirmed != last_sent_confirmed_) {
        spdlog::debug("confirmed {} to slot {}", confirmed, config_.postgres.slot);
    }
    last_sent_confirmed_ = confirmed;
    last_status_sent_ = Clock::now();
    reply_requested_ = false;
    metrics_.setConfirmed(confirmed.value());
    return {};
}

void Relay::Session::updateGauges() {
    metrics_.setInFlight(sink_->inFlight());
    metrics_.setServerWalEnd(server_wal_end_.value());
    auto confirmed = last_sent_confirmed_.value();
    auto end = server_wal_end_.value();
    metrics_.setLagBytes(end > confirmed ? end - confirmed : 0);
}

void Relay::Session::drainAndConfirm(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (sink_->inFlight() > 0 && Clock::now() < deadline) {
        if (auto ok = serveDeliveries(50ms); !ok) {
            spdlog::warn("while draining: {}", ok.error().message);
            break;
        }
    }
    if (sink_->inFlight() > 0) {
        spdlog::warn("{} events were still in flight after {} ms; they are not confirmed and will be sent again",
                     sink_->inFlight(), timeout.count());
    }
    if (auto ok = sendStatus(false); !ok) {
        spdlog::warn("could not send the final status update: {}", ok.error().message);
    } else {
        (void)stream_->flush();
        spdlog::info("confirmed {} to slot {}", checkpointer_.confirmed(), config_.postgres.slot);
    }
    updateGauges();
}

Relay::Relay(const config::Config& config, metrics::Metrics& metrics, const std::atomic<bool>& stop_requested)
    : config_(config), metrics_(metrics), stop_requested_(stop_requested) {}

int Relay::run() {
    std::mt19937_64 rng{std::random_device{}()};
    auto backoff = 200ms;
    bool first = true;
    while (!stop_requested_.load()) {
        if (!first) metrics_.reconnect();
        first = false;
        bool streamed = false;
        std::expected<void, Error> result;
        {
            Session session(*this);
            result = session.run(streamed);
            metrics_.setStreaming(false);
        }
        if (result) return 0;
        const Error& error = result.error();
        metrics_.error(stageOf(error.kind), toString(error.kind));
        if (!isRetriable(error.kind)) {
            spdlog::error("{} ({}); exiting", error.message, toString(error.kind));
            return 1;
        }
        if (streamed) backoff = 200ms;
        const auto cap = error.kind == ErrorKind::SlotInUse ? 2000ms : 30000ms;
        std::uniform_int_distribution<std::int64_t> jitter(0, backoff.count() / 2);
        auto wait = std::chrono::milliseconds(backoff.count() + jitter(rng));
        if (error.kind == ErrorKind::SlotInUse) {
            spdlog::info("{}; retrying in {} ms", error.message, wait.count());
        } else {
            spdlog::warn("{} ({}); retrying in {} ms from the last confirmed LSN", error.message, toString(error.kind),
                         wait.count());
        }
        auto until = Clock::now() + wait;
        while (Clock::now() < until && !stop_requested_.load()) {
            metrics_.tick();
            std::this_thread::sleep_for(50ms);
        }
        backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(cap));
    }
    return 0;
}

}  // namespace outboxd::app
