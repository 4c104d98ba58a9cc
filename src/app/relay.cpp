#include "app/relay.h"

#include <poll.h>

#include <optional>
#include <random>
#include <thread>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/logging.h"
#include "app/confirm_pacer.h"
#include "cdc/publication_watch.h"
#include "app/payload_set.h"
#include "app/pipeline.h"
#include "cdc/replication_stream.h"
#include "cdc/source_checks.h"
#include "cdc/wire/copy_data.h"
#include "sink/kafka_sink.h"

namespace outboxd::app {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

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
        case ErrorKind::SourceSetting:
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
        case ErrorKind::SinkAuthentication:
        case ErrorKind::SinkFenced:
        case ErrorKind::SinkTransactionTooLong:
        case ErrorKind::CheckpointInvalid:
            return "sending";
    }
    return "unknown";
}

// The columns the configuration names, checked against each outbox table at connect: each
// table's own (its entry in source.outbox.tables, else the global keys).
std::vector<cdc::StreamOptions::RequiredColumn> requiredColumns(const config::Config& config) {
    std::vector<cdc::StreamOptions::RequiredColumn> out;
    for (const auto& table : config.outbox.tables) {
        const auto routing = config::tableRouting(config, table);
        const std::string entry = fmt::format("the entry of {}.{} in source.outbox.tables", table.schema, table.name);
        const auto& global = config.outbox.columns;
        const auto key = [&](std::string_view name, const std::string& column, const std::string& global_column) {
            return column == global_column ? fmt::format("source.outbox.columns.{}", name)
                                           : fmt::format("columns.{} of {}", name, entry);
        };
        const auto& c = routing.columns;
        out.push_back({key("id", c.id, global.id), c.id, table});
        out.push_back({key("aggregate_type", c.aggregate_type, global.aggregate_type), c.aggregate_type, table});
        out.push_back({key("aggregate_id", c.aggregate_id, global.aggregate_id), c.aggregate_id, table});
        out.push_back({key("type", c.type, global.type), c.type, table});
        out.push_back({key("payload", c.payload, global.payload), c.payload, table});
        if (!c.timestamp.empty()) {
            out.push_back({key("timestamp", c.timestamp, global.timestamp), c.timestamp, table});
        }
        for (const auto* tmpl : {routing.topic, routing.key}) {
            const std::string_view name = tmpl == routing.topic ? "topic" : "key";
            const bool own = tmpl != &config.routing.topic && tmpl != &config.routing.key;
            for (const auto& part : tmpl->parts) {
                if (!part.is_column) continue;
                out.push_back({own ? fmt::format("{} '{}' of {}", name, tmpl->source, entry)
                                   : fmt::format("routing.{} '{}'", name, tmpl->source),
                               part.text, table});
            }
        }
    }
    return out;
}

std::int64_t unixMicrosNow() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// While rows arrive less than kRowsFlowing apart, the next rows come before a delivery report
// needs serving (the slot is confirmed at most every 50 ms): the loop then waits on the socket
// alone, at most until kRowsFlowing after the last rows, and serves the reports on the turn that
// reads the next rows. At 1,000 transactions/s this saves the relay one wake-up per event; a
// report is served at most kRowsFlowing after it came (outboxd_event_latency_seconds counts to
// that moment). When rows stop, the loop watches the producer's pipe again.
constexpr auto kRowsFlowing = 2ms;

}  // namespace

// One replication connection and one producer, from open to stop or error.
class Relay::Session {
public:
    explicit Session(Relay& relay)
        : relay_(relay),
          config_(relay.config_),
          metrics_(relay.metrics_),
          pacer_(ConfirmPacer::kMinSpacing, relay.config_.postgres.status_interval, cdc::Lsn{}) {}

    // Returns {} after a clean stop, an error otherwise. `streamed` tells whether it got as far
    // as streaming (the backoff restarts then).
    std::expected<void, Error> run(bool& streamed, bool allow_create_slot);
    // The LSN last confirmed to the slot in this session (invalid before streaming).
    [[nodiscard]] cdc::Lsn lastConfirmed() const { return last_sent_confirmed_; }

private:
    std::expected<void, Error> runStreaming(bool& streamed, bool allow_create_slot);
    // What one wait found ready, to be served on the next turn of the loop.
    struct Ready {
        bool sink = true;    // the producer's pipe was written to (or was not watched)
        bool source = true;  // the replication socket is readable (or was not watched)
    };
    // Flushes the replication socket and waits on the producer's pipe and the socket until one is
    // ready or a status update or commit falls due (at most 100 ms). While rows flow (`rows_at`
    // less than kRowsFlowing ago) it waits on the socket alone; while the pipeline is blocked on
    // the producer's queue, on the pipe alone.
    std::expected<Ready, Error> waitForWork(Clock::time_point rows_at);
    // Exactly-once mode: reads the slot's checkpoint and hands the skip rule to the pipeline.
    std::expected<void, Error> loadCheckpoint(const cdc::StreamInfo& info);
    // Exactly-once mode: commits the open Kafka transaction, with the checkpoint record, when it
    // is due (or `force`) and no PostgreSQL transaction is half received; stops the relay when a
    // PostgreSQL transaction keeps it open towards transaction.timeout.ms.
    std::expected<void, Error> maybeCommitTransaction(bool force);
    // Exactly-once mode: how long the loop may wait before a commit falls due.
    [[nodiscard]] std::chrono::milliseconds untilCommitDue() const;
    std::expected<void, Error> sendStatus(bool reply_requested = false);
    std::expected<void, Error> maybeSendStatus();
    void updateGauges();
    // Between rows: a SIGHUP or a changed descriptor set file swaps the typed-payload set.
    void maybeReloadPayloads();
    // Waits up to `timeout` for deliveries to drain, then confirms what was delivered.
    void drainAndConfirm(std::chrono::milliseconds timeout);
    // What may be confirmed: the pipeline's contiguous prefix, no further than the publication
    // watch last saw every outbox table published, and never behind what was confirmed already.
    [[nodiscard]] cdc::Lsn confirmable() const;

    Relay& relay_;
    const config::Config& config_;
    metrics::Metrics& metrics_;
    std::unique_ptr<sink::KafkaSink> sink_;
    std::unique_ptr<cdc::ReplicationStream> stream_;
    std::unique_ptr<Pipeline> pipeline_;
    std::unique_ptr<cdc::PublicationWatch> publication_watch_;

    cdc::Lsn last_sent_confirmed_;
    ConfirmPacer pacer_;

    // Exactly-once mode (sink.kafka.delivery: exactly-once).
    bool eos_ = false;
    std::string transactional_id_;
    std::uint64_t system_identifier_ = 0;
    // Invariant (exactly-once): nothing past this LSN is confirmed while a Kafka transaction is
    // open or after one was aborted; it moves only when a Kafka commit succeeded.
    cdc::Lsn committed_position_;
    bool aborted_ = false;
};

std::expected<void, Error> Relay::Session::run(bool& streamed, bool allow_create_slot) {
    auto result = runStreaming(streamed, allow_create_slot);
    if (eos_ && sink_ != nullptr && sink_->transactionOpen()) {
        aborted_ = true;
        if (auto aborted = sink_->abortTransaction(); !aborted) {
            if (aborted.error().kind == ErrorKind::SinkFenced) return std::unexpected(aborted.error());
            spdlog::warn("{}", aborted.error().message);
        }
    }
    return result;
}

std::expected<void, Error> Relay::Session::loadCheckpoint(const cdc::StreamInfo& info) {
    const auto& topic = config_.kafka.checkpoint_topic;
    if (auto ok = sink_->ensureCompactedTopic(topic); !ok) return ok;
    auto value = sink::readLatestCommitted(config_.kafka, topic, config_.postgres.slot, std::chrono::seconds{60});
    if (!value) return std::unexpected(value.error());
    std::optional<cdc::CheckpointRecord> checkpoint;
    if (*value && !(*value)->empty()) {
        const auto* data = reinterpret_cast<const std::byte*>((*value)->data());
        auto decoded = cdc::decodeCheckpoint(std::span<const std::byte>(data, (*value)->size()));
        if (!decoded) {
            return std::unexpected(Error{ErrorKind::CheckpointInvalid,
                                         fmt::format("the checkpoint of slot {} on topic {}: {}",
                                                     config_.postgres.slot, topic, decoded.error())});
        }
        checkpoint = *decoded;
    }
    cdc::SkipRule rule(checkpoint);
    if (auto ok = rule.checkServer(system_identifier_, info.server_flush); !ok) {
        return std::unexpected(Error{ErrorKind::CheckpointInvalid,
                                     fmt::format("slot {}, checkpoint topic {}: {}", config_.postgres.slot, topic,
                                                 ok.error())});
    }
    if (checkpoint) {
        spdlog::info("exactly-once: Kafka holds slot {} up to the transaction committed at {} (end {}); the slot is "
                     "at {}, transactions at or below the checkpoint are skipped",
                     config_.postgres.slot, checkpoint->commit_lsn, checkpoint->end_lsn, info.start_lsn);
    } else {
        spdlog::info("exactly-once: no checkpoint of slot {} on topic {} yet", config_.postgres.slot, topic);
    }
    pipeline_->setSkipRule(rule);
    return {};
}

std::chrono::milliseconds Relay::Session::untilCommitDue() const {
    if (!eos_ || !sink_->transactionOpen()) return std::chrono::milliseconds{100};
    auto due = sink_->transactionStarted() + config_.kafka.transaction_interval;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now());
    return std::max(left, std::chrono::milliseconds{0});
}

std::expected<void, Error> Relay::Session::maybeCommitTransaction(bool force) {
    if (!eos_ || !sink_->transactionOpen()) return {};
    const auto age = Clock::now() - sink_->transactionStarted();
    if (!pipeline_->atTransactionBoundary()) {
        const auto limit = sink_->transactionTimeout() - sink_->transactionTimeout() / 10;
        if (age < limit) return {};
        const cdc::Lsn txn = pipeline_->openCommitLsn();
        aborted_ = true;
        if (auto aborted = sink_->abortTransaction(); !aborted && aborted.error().kind == ErrorKind::SinkFenced) {
            return std::unexpected(aborted.error());
        }
        return std::unexpected(Error{
            ErrorKind::SinkTransactionTooLong,
            fmt::format("exactly-once: the PostgreSQL transaction committed at {} has kept the Kafka transaction "
                        "open for {} ms, close to transaction.timeout.ms ({} ms), after which the broker aborts it; a "
                        "PostgreSQL transaction is never split, so retrying meets it again. The Kafka transaction "
                        "was aborted and nothing past {} is confirmed. Raise "
                        "sink.kafka.properties.transaction.timeout.ms (at most the broker's "
                        "transaction.max.timeout.ms, 900000 by default), or deliver this backlog with delivery: "
                        "at-least-once",
                        txn, std::chrono::duration_cast<std::chrono::milliseconds>(age).count(),
                        sink_->transactionTimeout().count(), committed_position_)});
    }
    if (!force && age < config_.kafka.transaction_interval &&
        sink_->transactionRecords() < static_cast<std::size_t>(config_.kafka.transaction_max_events)) {
        return {};
    }
    const auto last = pipeline_->lastCommit();
    if (!last.end_lsn.isValid() || last.end_lsn <= last.commit_lsn) {
        return std::unexpected(Error{ErrorKind::InvariantViolated,
                                     fmt::format("exactly-once: no complete PostgreSQL transaction to checkpoint "
                                                 "(commit {}, end {})",
                                                 last.commit_lsn, last.end_lsn)});
    }
    const auto bytes = cdc::encodeCheckpoint({system_identifier_, last.commit_lsn, last.end_lsn});
    outbox::OutboxEvent record;
    record.topic = config_.kafka.checkpoint_topic;
    record.key = config_.postgres.slot;
    record.value.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const std::size_t records = sink_->transactionRecords();
    if (auto ok = sink_->commitTransaction(record); !ok) {
        aborted_ = true;
        return ok;
    }
    committed_position_ = last.end_lsn;
    spdlog::debug("Kafka transaction committed: {} records, checkpoint {} (end {})", records, last.commit_lsn,
                  last.end_lsn);
    return pipeline_->serveDeliveries(std::chrono::milliseconds{0});
}

std::expected<void, Error> Relay::Session::runStreaming(bool& streamed, bool allow_create_slot) {
    streamed = false;
    cdc::StreamOptions options{config_.postgres.dsn,
                               config_.postgres.slot,
                               config_.postgres.publication,
                               config_.postgres.create_slot && allow_create_slot,
                               config_.postgres.create_publication,
                               config_.outbox.tables,
                               4,
                               relay_.accept_slot_loss_,
                               requiredColumns(config_),
                               config_.postgres.failover,
                               relay_.system_id_,
                               relay_.timeline_,
                               relay_.confirmed_};
    metrics_.setConnecting(true);
    auto stream = cdc::ReplicationStream::open(options);
    metrics_.setConnecting(false);
    if (!stream) return std::unexpected(stream.error());
    stream_ = std::move(*stream);
    const auto& info = stream_->info();
    eos_ = config_.kafka.delivery == config::Delivery::ExactlyOnce;
    if (eos_) {
        system_identifier_ = std::strtoull(info.system_id.c_str(), nullptr, 10);
        transactional_id_ = config_.kafka.transactional_id.empty()
                                ? fmt::format("outboxd-{}-{}", info.system_id, config_.postgres.slot)
                                : config_.kafka.transactional_id;
        committed_position_ = info.start_lsn;
    }
    // The producer comes after the slot is ours: a standby retrying a slot in use builds none.
    // In exactly-once mode its init_transactions fences an older producer with the same id and
    // aborts what that one left open, before the checkpoint is read.
    auto sink = sink::KafkaSink::create(config_.kafka, transactional_id_);
    if (!sink) return std::unexpected(sink.error());
    sink_ = std::move(*sink);
    relay_.system_id_ = info.system_id;
    relay_.timeline_ = info.timeline;
    pipeline_ = std::make_unique<Pipeline>(config_, *sink_, metrics_, info.proto_version, info.start_lsn);
    if (eos_) {
        if (auto ok = loadCheckpoint(info); !ok) return ok;
    }
    pipeline_->setTypedPayloads(relay_.payloads_ != nullptr ? relay_.payloads_->current() : nullptr);
    last_sent_confirmed_ = info.start_lsn;
    streamed = true;
    metrics_.setStreaming(true);
    metrics_.setConfirmed(info.start_lsn.value());
    spdlog::info("streaming from slot {} at {} (PostgreSQL {}, pgoutput protocol {}, publication {})",
                 config_.postgres.slot, info.start_lsn, info.server_version, info.proto_version,
                 config_.postgres.publication);

    cdc::PublicationWatchOptions watch{config_.postgres.dsn, config_.postgres.publication, config_.outbox.tables,
                                       std::chrono::milliseconds{1000}};
    watch.server = cdc::ServerPin{info.host, info.hostaddr, info.port};
    publication_watch_ = std::make_unique<cdc::PublicationWatch>(std::move(watch));
    publication_watch_->start();

    cdc::SilenceDetector silence(info.server_silence_limit, Clock::now());
    // What the last poll said, so a turn makes no call that can only find nothing: the producer's
    // queue is served when its pipe was written to, the socket read when it was readable. Both
    // are true until a poll that watched them says otherwise.
    bool sink_ready = true;
    bool source_ready = true;
    auto gauges_due = Clock::now();
    auto rows_at = Clock::time_point{};
    while (true) {
        metrics_.tick();
        if (auto narrowed = publication_watch_->failure()) {
            drainAndConfirm(config_.kafka.shutdown_timeout);
            return std::unexpected(*narrowed);
        }
        if (relay_.stop_requested_.load(std::memory_order_relaxed)) {
            spdlog::info("stop requested: delivering {} in-flight events, then confirming", sink_->inFlight());
            if (auto ok = maybeCommitTransaction(true); !ok) spdlog::warn("at stop: {}", ok.error().message);
            drainAndConfirm(config_.kafka.shutdown_timeout);
            stream_->close();
            metrics_.setStreaming(false);
            return {};
        }
        // And every 100 ms regardless (with the gauges), so that nothing depends on the pipe alone.
        if (sink_ready || Clock::now() >= gauges_due) {
            if (auto ok = pipeline_->serveDeliveries(0ms); !ok) return std::unexpected(ok.error());
        }
        if (auto ok = pipeline_->retryHeld(); !ok) {
            drainAndConfirm(config_.kafka.shutdown_timeout);
            return std::unexpected(ok.error());
        }
        bool more = false;  // stopped at 4,096 frames with more perhaps buffered
        for (int i = 0; !pipeline_->blocked(); ++i) {
            if (i == 4096) {
                more = true;
                break;
            }
            auto frame = stream_->next(source_ready);
            if (!frame) return std::unexpected(frame.error());
            if (!frame->has_value()) {
                source_ready = false;  // drained: read again once poll says the socket is readable
                break;
            }
            rows_at = Clock::now();
            silence.heard(rows_at);
            if (auto ok = pipeline_->handleFrame(**frame); !ok) {
                if (!isRetriable(ok.error().kind)) drainAndConfirm(config_.kafka.shutdown_timeout);
                return std::unexpected(ok.error());
            }
            if (auto ok = maybeCommitTransaction(false); !ok) return ok;
        }
        if (auto ok = maybeCommitTransaction(false); !ok) return ok;
        // Confirmation waits for the publication check after the acknowledged position: ask for it.
        publication_watch_->want(pipeline_->confirmed());
        if (auto ok = maybeSendStatus(); !ok) return std::unexpected(ok.error());
        // Gauges at most every 100 ms: scrapes come seconds apart.
        if (const auto now = Clock::now(); now >= gauges_due) {
            updateGauges();
            gauges_due = now + 100ms;
        }
        maybeReloadPayloads();
        if (pipeline_->blocked()) silence.notReading(Clock::now());
        switch (silence.check(Clock::now())) {
            case cdc::SilenceDetector::Verdict::Quiet:
                break;
            case cdc::SilenceDetector::Verdict::AskForReply:
                if (auto ok = sendStatus(true); !ok) return std::unexpected(ok.error());
                break;
            case cdc::SilenceDetector::Verdict::Dead:
                return std::unexpected(Error{
                    ErrorKind::SourceStream,
                    fmt::format("nothing heard from the server for {} s (twice its wal_sender_timeout), not even an "
                                "answer to a status update asking for one: the connection is presumed dead",
                                std::chrono::duration_cast<std::chrono::seconds>(silence.limit()).count())});
        }
        if (more && !pipeline_->blocked()) {
            sink_ready = true;
            continue;
        }

        auto ready = waitForWork(rows_at);
        if (!ready) return std::unexpected(ready.error());
        sink_ready = ready->sink;
        source_ready = ready->source;
    }
}

std::expected<Relay::Session::Ready, Error> Relay::Session::waitForWork(Clock::time_point rows_at) {
    auto until_status = pacer_.untilDue(Clock::now(), confirmable());
    auto timeout_ms =
        static_cast<int>(std::clamp<std::int64_t>(std::min(until_status, untilCommitDue()).count(), 0, 100));
    auto flushed = stream_->flush();
    if (!flushed) return std::unexpected(flushed.error());
    short events = static_cast<short>((pipeline_->blocked() ? 0 : POLLIN) | (*flushed ? 0 : POLLOUT));
    const auto flowing_left = rows_at + kRowsFlowing - Clock::now();
    const bool watch_sink = (events & POLLIN) == 0 || flowing_left <= Clock::duration::zero();
    if (!watch_sink) {
        const auto left_ms = std::chrono::ceil<std::chrono::milliseconds>(flowing_left).count();
        timeout_ms = std::min(timeout_ms, static_cast<int>(std::max<std::int64_t>(left_ms, 1)));
    }
    std::array<pollfd, 2> fds{};
    nfds_t n = 0;
    if (watch_sink) fds[n++] = pollfd{sink_->eventFd(), POLLIN, 0};
    const nfds_t socket_at = n;
    if (events != 0) fds[n++] = pollfd{stream_->socket(), events, 0};
    if (::poll(fds.data(), n, timeout_ms) < 0) return Ready{};  // interrupted: look at both
    Ready ready;
    // Not watched: served on the next turn anyway.
    ready.sink = !watch_sink || fds[0].revents != 0;
    // Not watched for input (blocked on the producer's queue): what arrived meanwhile is read
    // once the pipeline takes rows again.
    ready.source = (events & POLLIN) == 0 ||
                   (fds[socket_at].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0;
    return ready;
}

std::expected<void, Error> Relay::Session::maybeSendStatus() {
    bool asked = pipeline_->takeReplyRequest();
    if (pacer_.due(Clock::now(), confirmable(), asked)) return sendStatus();
    return {};
}

cdc::Lsn Relay::Session::confirmable() const {
    cdc::Lsn confirmed = pipeline_->confirmed();
    // Exactly-once: an acknowledged record is not in Kafka until its transaction commits.
    if (eos_ && (aborted_ || sink_->transactionOpen())) confirmed = std::min(confirmed, committed_position_);
    if (publication_watch_ != nullptr) confirmed = std::min(confirmed, publication_watch_->verified());
    return std::max(confirmed, last_sent_confirmed_);
}

std::expected<void, Error> Relay::Session::sendStatus(bool reply_requested) {
    cdc::Lsn confirmed = confirmable();
    cdc::wire::StandbyStatusUpdate update{confirmed, confirmed, confirmed,
                                          cdc::PgTimestamp::fromUnixMicros(unixMicrosNow()), reply_requested};
    if (auto ok = stream_->sendStatus(update); !ok) return ok;
    if (confirmed != last_sent_confirmed_) {
        spdlog::debug("confirmed {} to slot {}", confirmed, config_.postgres.slot);
    }
    last_sent_confirmed_ = confirmed;
    pacer_.sent(Clock::now(), confirmed);
    metrics_.setConfirmed(confirmed.value());
    return {};
}

void Relay::Session::maybeReloadPayloads() {
    const bool forced = relay_.reload_requested_ != nullptr && relay_.reload_requested_->exchange(false);
    if (relay_.payloads_ == nullptr || relay_.payloads_->current() == nullptr) return;
    if (relay_.payloads_->maybeReload(forced, metrics_)) pipeline_->setTypedPayloads(relay_.payloads_->current());
}

void Relay::Session::updateGauges() {
    metrics_.setInFlight(sink_->inFlight());
    metrics_.setKafkaUp(sink_->reachable());
    metrics_.setServerWalEnd(pipeline_->serverWalEnd().value());
    auto confirmed = last_sent_confirmed_.value();
    auto end = pipeline_->serverWalEnd().value();
    metrics_.setLagBytes(end > confirmed ? end - confirmed : 0);
    auto oldest = pipeline_->oldestUnconfirmedCommit();
    double lag_seconds = 0;
    if (oldest && oldest->micros != 0) {
        lag_seconds = static_cast<double>(unixMicrosNow() - oldest->unixMicros()) / 1e6;
    }
    metrics_.setLagSeconds(lag_seconds < 0 ? 0 : lag_seconds);
}

void Relay::Session::drainAndConfirm(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (sink_->inFlight() > 0 && Clock::now() < deadline) {
        metrics_.tick();
        if (auto ok = pipeline_->serveDeliveries(50ms); !ok) {
            spdlog::warn("while draining: {}", ok.error().message);
            break;
        }
        // Keep the walsender from timing out during a long drain, confirming as acknowledgements come.
        if (auto ok = maybeSendStatus(); !ok) {
            spdlog::warn("while draining: {}", ok.error().message);
            break;
        }
    }
    if (sink_->inFlight() > 0) {
        spdlog::warn("{} events were still in flight after {} ms; they are not confirmed and will be sent again",
                     sink_->inFlight(), timeout.count());
    }
    if (eos_ && sink_->transactionOpen()) {
        aborted_ = true;
        if (auto aborted = sink_->abortTransaction(); !aborted) spdlog::warn("{}", aborted.error().message);
    }
    // A fresh check of the publication, so the final confirmation reaches what was delivered.
    if (publication_watch_ != nullptr && !publication_watch_->failure()) publication_watch_->checkNow(2000ms);
    if (auto ok = sendStatus(); !ok) {
        spdlog::warn("could not send the final status update: {}", ok.error().message);
    } else {
        (void)stream_->flush();
        spdlog::info("confirmed {} to slot {}", last_sent_confirmed_, config_.postgres.slot);
    }
    updateGauges();
}

Relay::Relay(const config::Config& config, metrics::Metrics& metrics, const std::atomic<bool>& stop_requested)
    : config_(config), metrics_(metrics), stop_requested_(stop_requested) {}

int Relay::run() {
    std::mt19937_64 rng{std::random_device{}()};
    auto backoff = 200ms;
    bool first = true;
    bool ever_streamed = false;
    cdc::Lsn last_confirmed;
    // The standby's "slot in use" line: the first, then one a minute with the count.
    std::optional<Clock::time_point> slot_in_use_logged;
    int slot_in_use_retries = 0;
    while (!stop_requested_.load()) {
        if (!first) metrics_.reconnect();
        first = false;
        bool streamed = false;
        bool progressed = false;
        std::expected<void, Error> result;
        {
            Session session(*this);
            result = session.run(streamed, !ever_streamed);
            metrics_.setStreaming(false);
            metrics_.setKafkaUp(std::nullopt);
            if (session.lastConfirmed().isValid()) {
                progressed = session.lastConfirmed() > last_confirmed;
                last_confirmed = session.lastConfirmed();
                confirmed_ = last_confirmed;
            }
        }
        ever_streamed = ever_streamed || streamed;
        if (result) return 0;
        Error error = result.error();
        if (error.kind == ErrorKind::SlotMissing && ever_streamed && !error.message.starts_with(cdc::kPromotionRefusal)) {
            error.message = fmt::format(
                "replication slot '{}' disappeared while outboxd was streaming from it ({}). outboxd does not "
                "recreate it on its own: a new slot starts at the current WAL position, so events committed since the "
                "last confirmed LSN would be skipped. Reconcile consumers from the outbox table, then restart outboxd "
                "(with create_slot: true it creates a new slot)",
                config_.postgres.slot, error.message);
        }
        metrics_.error(stageOf(error.kind), toString(error.kind));
        LogFields fields{{"error_kind", std::string(toString(error.kind))},
                         {"lsn", !error.lsn.empty()          ? error.lsn
                                 : last_confirmed.isValid() ? fmt::format("{}", last_confirmed)
                                                            : std::string()},
                         {"table", error.table}};
        if (!isRetriable(error.kind)) {
            spdlog::error("{} ({}); exiting", error.message, toString(error.kind));
            return 1;
        }
        // Start the backoff over only when the session got somewhere: a session that streams and
        // fails on the same event again must not reconnect in a tight loop.
        if (streamed && progressed) backoff = 200ms;
        const auto cap = error.kind == ErrorKind::SlotInUse ? 2000ms : 30000ms;
        std::uniform_int_distribution<std::int64_t> jitter(0, backoff.count() / 2);
        auto wait = std::chrono::milliseconds(backoff.count() + jitter(rng));
        if (error.kind == ErrorKind::SlotInUse) {
            ++slot_in_use_retries;
            if (!slot_in_use_logged || Clock::now() - *slot_in_use_logged >= 60s) {
                spdlog::info("{}; retrying every {} ms or so{}", error.message, cap.count(),
                             slot_in_use_logged ? fmt::format(" ({} attempts so far)", slot_in_use_retries) : "");
                slot_in_use_logged = Clock::now();
            }
        } else {
            slot_in_use_logged.reset();
            slot_in_use_retries = 0;
            spdlog::warn("{} ({}); retrying in {} ms from the slot's confirmed LSN{}", error.message,
                         toString(error.kind), wait.count(),
                         last_confirmed.isValid() ? fmt::format(" (last confirmed here: {})", last_confirmed) : "");
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
