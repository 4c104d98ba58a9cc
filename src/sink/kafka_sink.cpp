#include "sink/kafka_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "outbox/json_text.h"

namespace outboxd::sink {

std::string kafkaClientVersion() { return rd_kafka_version_str(); }

std::vector<std::pair<std::string, std::string>> defaultProducerProperties() {
    return {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"partitioner", "murmur2_random"},
        // Low linger keeps commit-to-Kafka latency in milliseconds; batches still fill under load.
        {"linger.ms", "2"},
        // Backpressure bound: the relay stops reading the replication stream while the queue is full.
        {"queue.buffering.max.messages", "20000"},
        {"queue.buffering.max.kbytes", "16384"},
        {"batch.size", "1000000"},
        {"client.id", "outboxd"},
        // Never expire a queued record: a record that times out can leave a gap that idempotence
        // does not cover, so a later record of the same key lands before it is sent again. A broker
        // outage is then a stall (visible in outboxd_kafka_up), never a reorder.
        {"message.timeout.ms", "0"},
        // Broker states for outboxd_kafka_up, served on the relay's thread by poll().
        {"statistics.interval.ms", "1000"},
    };
}


namespace {

// The number of brokers in the UP state in a librdkafka statistics document
// (https://github.com/confluentinc/librdkafka/blob/master/STATISTICS.md: brokers.*.source and
// brokers.*.state), not counting the internal and logical brokers.
int brokersUp(std::string_view json) {
    int up = 0;
    constexpr std::string_view kSource = "\"source\":\"";
    constexpr std::string_view kState = "\"state\":\"";
    for (auto pos = json.find(kSource); pos != std::string_view::npos; pos = json.find(kSource, pos)) {
        pos += kSource.size();
        auto source = json.substr(pos, json.find('"', pos) - pos);
        auto state_pos = json.find(kState, pos);
        if (state_pos == std::string_view::npos) break;
        state_pos += kState.size();
        auto state = json.substr(state_pos, json.find('"', state_pos) - state_pos);
        if (source != "internal" && source != "logical" && state == "UP") ++up;
        pos = state_pos;
    }
    return up;
}

}  // namespace

bool isSecretProperty(std::string_view name) {
    std::string lower(name);
    std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return config::isSecretKey(lower) || lower.find("jaas") != std::string::npos;
}

struct KafkaSink::Impl {
    std::string header_scratch;  // a JSON-encoded header value (produce() only)
    static constexpr std::size_t kMaxTopicHandles = 1000;

    rd_kafka_t* rk = nullptr;
    rd_kafka_queue_t* main_queue = nullptr;
    std::array<int, 2> pipe_fds{-1, -1};
    std::vector<Delivery> collected;
    std::size_t in_flight = 0;
    bool fatal = false;
    std::string auth_error;  // set by onError on an authentication failure
    std::string brokers;     // sink.kafka.brokers, for the unreachable warning
    // Exactly-once mode: the transactional id ("" = not transactional) and the open transaction.
    std::string transactional_id;
    bool txn_open = false;
    std::chrono::steady_clock::time_point txn_started{};
    std::size_t txn_records = 0;
    std::chrono::milliseconds txn_timeout{60000};
    // The checkpoint record's delivery failed (its report never reaches the relay).
    std::string checkpoint_error;
    // Broker reachability from the statistics callback (relay thread). Unknown until the first
    // statistics document.
    std::optional<bool> reachable;
    std::chrono::steady_clock::time_point last_reachable = std::chrono::steady_clock::now();
    std::chrono::milliseconds unreachable_warning_after{30000};
    bool warned_unreachable = false;
    // Topics this producer has produced to, with the producer's handle for each: producing
    // through a handle spares librdkafka a look-up of the topic by name (under a lock) for every
    // record. At most kMaxTopicHandles are kept; past that the least recently used half is
    // released (librdkafka keeps a released topic alive while records of it are queued).
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    struct TopicEntry {
        rd_kafka_topic_t* rkt = nullptr;
        std::uint64_t last_use = 0;
    };
    std::unordered_map<std::string, TopicEntry, NameHash, std::equal_to<>> topics;
    std::uint64_t use_clock = 0;

    // Warms new topics off the relay's thread: librdkafka looks up an unknown topic's partitions
    // on its one-second timer, which would delay the first events of every new topic; a
    // metadata request here makes that happen at once without blocking the event loop.
    std::mutex warm_mutex;
    std::condition_variable warm_cv;
    std::deque<std::string> warm_queue;  // guarded by warm_mutex
    bool warm_stopping = false;          // guarded by warm_mutex
    std::thread warmer;

    rd_kafka_topic_t* topicHandle(const std::string& topic) {
        ++use_clock;
        if (auto it = topics.find(std::string_view(topic)); it != topics.end()) {
            it->second.last_use = use_clock;
            return it->second.rkt;
        }
        if (topics.size() >= kMaxTopicHandles) evictTopics();
        rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        if (rkt != nullptr) {
            std::lock_guard lock(warm_mutex);
            warm_queue.push_back(topic);
            warm_cv.notify_one();
        }
        topics.emplace(topic, TopicEntry{rkt, use_clock});
        return rkt;
    }

    void evictTopics() {
        std::vector<std::uint64_t> uses;
        uses.reserve(topics.size());
        for (const auto& [name, entry] : topics) uses.push_back(entry.last_use);
        auto middle = uses.begin() + static_cast<std::ptrdiff_t>(uses.size() / 2);
        std::ranges::nth_element(uses, middle);
        const std::uint64_t cutoff = *middle;
        std::erase_if(topics, [&](const auto& item) {
            if (item.second.last_use >= cutoff) return false;
            if (item.second.rkt != nullptr) rd_kafka_topic_destroy(item.second.rkt);
            return true;
        });
    }

    void warmLoop() {
        while (true) {
            std::string name;
            {
                std::unique_lock lock(warm_mutex);
                warm_cv.wait(lock, [&] { return warm_stopping || !warm_queue.empty(); });
                if (warm_stopping) return;
                name = std::move(warm_queue.front());
                warm_queue.pop_front();
            }
            warmTopic(name);
        }
    }

    void warmTopic(const std::string& name) {
        rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, name.c_str(), nullptr);
        if (rkt == nullptr) return;
        // A topic the broker creates on first use answers "unknown" at first: ask again briefly.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
        while (std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(warm_mutex);
                if (warm_stopping) break;
            }
            const rd_kafka_metadata_t* md = nullptr;
            bool ready = false;
            if (rd_kafka_metadata(rk, 0, rkt, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR && md != nullptr) {
                ready = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                        md->topics[0].partition_cnt > 0;
                rd_kafka_metadata_destroy(md);
            } else {
                break;  // broker unreachable: librdkafka's own timer takes over
            }
            if (ready) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        rd_kafka_topic_destroy(rkt);
    }

    void stopWarmer() {
        {
            std::lock_guard lock(warm_mutex);
            warm_stopping = true;
        }
        warm_cv.notify_all();
        if (warmer.joinable()) warmer.join();
    }

    void checkReachable() {
        if (reachable.value_or(true)) return;
        const auto down = std::chrono::steady_clock::now() - last_reachable;
        if (!warned_unreachable && down >= unreachable_warning_after) {
            warned_unreachable = true;
            spdlog::warn("no Kafka broker has been reachable for {} s (sink.kafka.brokers: {}); events wait in the "
                         "producer's queue and nothing is confirmed until one is; check the brokers, the network "
                         "and sink.kafka.properties (security.protocol, TLS, SASL)",
                         std::chrono::duration_cast<std::chrono::seconds>(down).count(), brokers);
        }
    }

    ~Impl() {
        stopWarmer();
        if (rk != nullptr) {
            rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(rk, 0);
            for (auto& [name, entry] : topics) {
                if (entry.rkt != nullptr) rd_kafka_topic_destroy(entry.rkt);
            }
            if (main_queue != nullptr) {
                rd_kafka_queue_io_event_enable(main_queue, -1, nullptr, 0);
                rd_kafka_queue_destroy(main_queue);
            }
            rd_kafka_destroy(rk);
        }
        for (int fd : pipe_fds) {
            if (fd >= 0) ::close(fd);
        }
    }

    // The record a delivery report is about, back into an OutboxEvent (for dead-lettering).
    static void copyRecord(const rd_kafka_message_t* msg, outbox::OutboxEvent& out) {
        if (msg->rkt != nullptr) out.topic = rd_kafka_topic_name(msg->rkt);
        out.key_is_null = msg->key == nullptr;
        if (msg->key != nullptr) out.key.assign(static_cast<const char*>(msg->key), msg->key_len);
        out.value_is_null = msg->payload == nullptr;
        if (msg->payload != nullptr) out.value.assign(static_cast<const char*>(msg->payload), msg->len);
        rd_kafka_headers_t* headers = nullptr;
        if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR || headers == nullptr) return;
        const char* name = nullptr;
        const void* value = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
            std::string v = value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string();
            std::string_view n(name);
            if (n == "id") {
                out.id = std::move(v);
            } else if (n == "type") {
                out.type = std::move(v);
            } else if (n == "aggregate_type") {
                out.aggregate_type = std::move(v);
            } else if (n == "content-type") {
                out.content_type = std::move(v);
            } else {
                out.extra_headers.emplace_back(std::string(n), std::move(v));
            }
        }
    }

    static constexpr std::uintptr_t kCheckpointToken = ~std::uintptr_t{0};

    // With acks=all (which outboxd requires) every record the broker wrote is reported with its
    // offset. A success without one is librdkafka's "implicit acknowledgement": a later batch of the
    // same partition succeeded, so the idempotent producer takes the earlier ones as written. A
    // broker with no state yet for the producer on a partition (one it has just created) accepts
    // any first sequence number, so when the partition's first batch was refused (NOT_LEADER while
    // the partition was still starting) and the next one was already on its way, the first batch is
    // reported delivered and is not in the log (librdkafka 2.8.0, Kafka 4.1, seen in
    // events_to_many_auto_created_topics_all_arrive). Such a report is not taken as delivery.
    static bool unverified(const rd_kafka_message_t* msg) {
        return msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->offset < 0;
    }
    static std::string unverifiedError(const rd_kafka_message_t* msg) {
        return fmt::format("Kafka's client reported the record on partition {} delivered without an offset (acknowledged "
                           "only because a later record of that partition was written; the partition may have just "
                           "been created): not taken as delivered",
                           msg->partition);
    }

    static void onDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
        auto* self = static_cast<Impl*>(opaque);
        const bool no_offset = unverified(msg);
        if (reinterpret_cast<std::uintptr_t>(msg->_private) == kCheckpointToken) {
            if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) self->checkpoint_error = rd_kafka_err2str(msg->err);
            if (no_offset) self->checkpoint_error = unverifiedError(msg);
            return;
        }
        Delivery d;
        d.token = reinterpret_cast<std::uintptr_t>(msg->_private);
        d.ok = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && !no_offset;
        d.bytes = msg->len;
        if (msg->rkt != nullptr) d.topic = rd_kafka_topic_name(msg->rkt);
        if (no_offset) {
            d.error = unverifiedError(msg);
        } else if (!d.ok) {
            d.error = rd_kafka_err2str(msg->err);
            switch (msg->err) {
                case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
                case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
                    d.permanent = true;
                    d.reason = "too_large";
                    break;
                case RD_KAFKA_RESP_ERR_INVALID_RECORD:
                case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
                    d.permanent = true;
                    d.reason = "rejected";
                    break;
                case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
                case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
                case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
                case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
                    d.permanent = true;
                    d.reason = "topic_refused";
                    break;
                case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
                    d.permanent = true;
                    d.reason = "bad_partition";
                    break;
                default:
                    break;
            }
            if (d.permanent) copyRecord(msg, d.record);
        }
        if (d.ok) self->markReachable(true);
        self->collected.push_back(std::move(d));
        if (self->in_flight > 0) --self->in_flight;
    }

    static void onError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
        auto* self = static_cast<Impl*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            self->fatal = true;
            std::array<char, 512> buf{};
            rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf.data(), buf.size());
            spdlog::error("kafka producer fatal error: {}: {}", rd_kafka_err2name(orig), buf.data());
            return;
        }
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->markReachable(false);
        if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) {
            self->auth_error = reason;
        }
        spdlog::warn("kafka: {}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
    }

    static int onStats(rd_kafka_t* /*rk*/, char* json, size_t len, void* opaque) {
        auto* self = static_cast<Impl*>(opaque);
        self->markReachable(brokersUp(std::string_view(json, len)) > 0);
        return 0;
    }

    // From the statistics (every statistics.interval.ms), and also from an acknowledgement (a
    // broker took a record) and from the all-brokers-down error, so the state stays right if a
    // user turns the statistics off.
    void markReachable(bool up) {
        if (up) {
            if (warned_unreachable) spdlog::info("a Kafka broker is reachable again");
            warned_unreachable = false;
            last_reachable = std::chrono::steady_clock::now();
        }
        reachable = up;
    }

    static void onLog(const rd_kafka_t* /*rk*/, int level, const char* fac, const char* buf) {
        // A broker failure is logged under FAIL and also raised to the error callback, which logs
        // it: one line per failure, so FAIL stays at debug.
        if (std::string_view(fac) == "FAIL") {
            spdlog::debug("librdkafka {}: {}", fac, buf);
        } else if (level <= 3) {
            spdlog::error("librdkafka {}: {}", fac, buf);
        } else if (level <= 4) {
            spdlog::warn("librdkafka {}: {}", fac, buf);
        } else {
            spdlog::debug("librdkafka {}: {}", fac, buf);
        }
    }
};

namespace {

// outboxd's defaults, then the user's properties under outboxd's rules
// (config::checkProducerProperty), brokers aside. Shared by KafkaSink::create and
// checkProducerProperties, so that --check-config refuses what the producer refuses.
std::optional<PropertyError> applyProperties(rd_kafka_conf_t* conf, const config::KafkaConfig& config) {
    std::array<char, 512> errstr{};
    auto set = [&](const std::string& name, const std::string& value) -> bool {
        return rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size()) == RD_KAFKA_CONF_OK;
    };
    for (const auto& [name, value] : defaultProducerProperties()) {
        if (!set(name, value)) {
            return PropertyError{name, fmt::format("librdkafka refused outboxd's default {}: {}", name, errstr.data())};
        }
    }
    for (const auto& [name, value] : config.properties) {
        if (auto problem = config::checkProducerProperty(name, value)) {
            return PropertyError{name, std::move(problem->message)};
        }
        if (!set(name, value)) {
            return PropertyError{name, fmt::format("sink.kafka.properties.{}: {}", name,
                                                   isSecretProperty(name) ? std::string("invalid value")
                                                                          : std::string(errstr.data()))};
        }
    }
    return std::nullopt;
}

void discardLog(const rd_kafka_t* /*rk*/, int /*level*/, const char* /*fac*/, const char* /*buf*/) {}

}  // namespace

std::optional<PropertyError> checkProducerProperties(const config::KafkaConfig& config) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    if (auto problem = applyProperties(conf, config)) {
        rd_kafka_conf_destroy(conf);
        return problem;
    }
    // Building a producer with Kerberos runs kinit, and with OIDC fetches a token: a check must
    // do neither, so for those only the property-by-property checks above apply.
    const auto is = [&](const char* name, std::string_view want) {
        const auto it = config.properties.find(name);
        if (it == config.properties.end()) return false;
        std::string lower = it->second;
        std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return lower == want;
    };
    if (is("sasl.mechanisms", "gssapi") || is("sasl.mechanism", "gssapi") || is("sasl.oauthbearer.method", "oidc")) {
        rd_kafka_conf_destroy(conf);
        return std::nullopt;
    }
    // No bootstrap.servers: the producer is built (librdkafka checks how the properties combine)
    // but never connects anywhere.
    rd_kafka_conf_set_log_cb(conf, &discardLog);
    std::array<char, 512> errstr{};
    // Exactly-once: a transactional producer has rules of its own (timeouts within
    // transaction.timeout.ms); the id here is a placeholder, nothing is initialised.
    if (config.delivery == config::Delivery::ExactlyOnce &&
        rd_kafka_conf_set(conf, "transactional.id", "outboxd-check-config", errstr.data(), errstr.size()) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return PropertyError{"", fmt::format("sink.kafka.delivery: exactly-once: {}", errstr.data())};
    }
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr.data(), errstr.size());
    if (rk == nullptr) {
        rd_kafka_conf_destroy(conf);
        return PropertyError{"", fmt::format("sink.kafka.properties: librdkafka refuses this combination: {}",
                                             errstr.data())};
    }
    rd_kafka_destroy(rk);
    return std::nullopt;
}

namespace {

bool isFencedCode(rd_kafka_resp_err_t code) {
    return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH || code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
}

Error fencedError(const std::string& transactional_id, std::string_view detail) {
    return Error{ErrorKind::SinkFenced,
                 fmt::format("the Kafka producer with transactional.id '{}' was fenced ({}): another outboxd started "
                             "with the same transactional id (on the same slot of the same database, or with the same "
                             "sink.kafka.transactional_id) and took over. This one stops; nothing past its last "
                             "committed checkpoint was confirmed. Run one relay per slot (a second one waits while "
                             "the slot is in use) or give each relay its own transactional_id",
                             transactional_id, detail)};
}

}  // namespace

KafkaSink::KafkaSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaSink::~KafkaSink() = default;

std::expected<std::unique_ptr<KafkaSink>, Error> KafkaSink::create(const config::KafkaConfig& config,
                                                                   const std::string& transactional_id) {
    auto impl = std::make_unique<Impl>();
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::array<char, 512> errstr{};
    auto fail = [&](std::string message) {
        rd_kafka_conf_destroy(conf);
        return std::unexpected(Error{ErrorKind::SinkCreate, std::move(message)});
    };
    auto set = [&](const std::string& name, const std::string& value) -> bool {
        return rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size()) == RD_KAFKA_CONF_OK;
    };
    if (!set("bootstrap.servers", config.brokers)) {
        return fail(fmt::format("sink.kafka.brokers: {}", errstr.data()));
    }
    if (auto problem = applyProperties(conf, config)) {
        return fail(std::move(problem->message));
    }
    if (!transactional_id.empty()) {
        if (!set("transactional.id", transactional_id)) {
            return fail(fmt::format("sink.kafka.transactional_id: {}", errstr.data()));
        }
        impl->transactional_id = transactional_id;
        if (auto it = config.properties.find("transaction.timeout.ms"); it != config.properties.end()) {
            impl->txn_timeout = std::chrono::milliseconds{std::stoll(it->second)};
        }
    }
    rd_kafka_conf_set_opaque(conf, impl.get());
    rd_kafka_conf_set_dr_msg_cb(conf, &Impl::onDelivery);
    rd_kafka_conf_set_error_cb(conf, &Impl::onError);
    rd_kafka_conf_set_log_cb(conf, &KafkaSink::Impl::onLog);
    rd_kafka_conf_set_stats_cb(conf, &Impl::onStats);
    impl->brokers = config.brokers;

    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr.data(), errstr.size());
    if (rk == nullptr) {
        return fail(fmt::format("could not create the Kafka producer: {}", errstr.data()));
    }
    impl->rk = rk;
    if (::pipe2(impl->pipe_fds.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
        return std::unexpected(Error{ErrorKind::SinkCreate, fmt::format("pipe: {}", std::strerror(errno))});
    }
    impl->main_queue = rd_kafka_queue_get_main(rk);
    rd_kafka_queue_io_event_enable(impl->main_queue, impl->pipe_fds[1], "1", 1);
    impl->warmer = std::thread([raw = impl.get()] { raw->warmLoop(); });
    if (!impl->transactional_id.empty()) {
        rd_kafka_error_t* error = rd_kafka_init_transactions(rk, static_cast<int>(impl->txn_timeout.count()));
        if (error != nullptr) {
            const auto code = rd_kafka_error_code(error);
            std::string detail = rd_kafka_error_string(error);
            const bool fatal = rd_kafka_error_is_fatal(error);
            rd_kafka_error_destroy(error);
            if (isFencedCode(code)) return std::unexpected(fencedError(impl->transactional_id, detail));
            return std::unexpected(Error{
                fatal ? ErrorKind::SinkCreate : ErrorKind::SinkDelivery,
                fmt::format("could not initialise the transactional producer (transactional.id '{}'): {}{}",
                            impl->transactional_id, detail,
                            fatal ? "; the brokers must support transactions (Kafka 0.11 or later, "
                                    "transaction.state.log.replication.factor brokers up) and allow this id"
                                  : "")});
        }
    }
    spdlog::debug("Kafka producer created (librdkafka {}{})", rd_kafka_version_str(),
                  impl->transactional_id.empty() ? std::string()
                                                 : fmt::format(", transactional.id {}", impl->transactional_id));
    return std::unique_ptr<KafkaSink>(new KafkaSink(std::move(impl)));
}

std::expected<ProduceStatus, Error> KafkaSink::produce(const outbox::OutboxEvent& event, std::uint64_t token) {
    if (!impl_->transactional_id.empty() && !impl_->txn_open) {
        if (rd_kafka_error_t* error = rd_kafka_begin_transaction(impl_->rk); error != nullptr) {
            const auto code = rd_kafka_error_code(error);
            std::string detail = rd_kafka_error_string(error);
            rd_kafka_error_destroy(error);
            if (isFencedCode(code)) return std::unexpected(fencedError(impl_->transactional_id, detail));
            return std::unexpected(
                Error{ErrorKind::SinkFatal, fmt::format("could not begin a Kafka transaction: {}", detail)});
        }
        impl_->txn_open = true;
        impl_->txn_started = std::chrono::steady_clock::now();
        impl_->txn_records = 0;
        impl_->checkpoint_error.clear();
    }
    rd_kafka_topic_t* rkt = impl_->topicHandle(event.topic);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(4 + event.extra_headers.size() + event.field_headers.size());
    // routing.header_encoding: json writes each value as Debezium Server's JSON header format does.
    auto own = [&](const char* name, const std::string& value, bool number) {
        if (!event.json_headers || number) {
            rd_kafka_header_add(headers, name, -1, value.data(), static_cast<ssize_t>(value.size()));
            return;
        }
        impl_->header_scratch.clear();
        outbox::appendJsonString(impl_->header_scratch, value);
        rd_kafka_header_add(headers, name, -1, impl_->header_scratch.data(),
                            static_cast<ssize_t>(impl_->header_scratch.size()));
    };
    // A header field of the same name takes the place of outboxd's own (routing.additional_fields).
    auto replaced = [&](std::string_view name) {
        return std::ranges::any_of(event.field_headers, [&](const auto& f) { return f.first == name; });
    };
    own("id", event.id, event.id_is_number);
    if (!replaced("type")) own("type", event.type, false);
    if (!replaced("aggregate_type")) own("aggregate_type", event.aggregate_type, false);
    if (!event.content_type.empty() && !replaced("content-type")) own("content-type", event.content_type, false);
    for (const auto& [name, value] : event.extra_headers) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                            static_cast<ssize_t>(value.size()));
    }
    for (const auto& [name, value] : event.field_headers) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()),
                            value ? value->data() : nullptr, value ? static_cast<ssize_t>(value->size()) : 0);
    }
    void* opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(token));
    void* value = event.value_is_null ? nullptr : const_cast<char*>(event.value.data());
    const std::size_t value_len = event.value_is_null ? 0 : event.value.size();
    rd_kafka_resp_err_t err;
    if (rkt == nullptr) {
        // librdkafka refused a handle for this name: produce by name, which reports why.
        err = rd_kafka_producev(impl_->rk, RD_KAFKA_V_TOPIC(event.topic.c_str()),
                                RD_KAFKA_V_KEY(event.key_is_null ? nullptr : event.key.data(),
                                               event.key_is_null ? 0 : event.key.size()),
                                RD_KAFKA_V_PARTITION(event.partition), RD_KAFKA_V_VALUE(value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    } else if (event.key_is_null) {
        err = rd_kafka_producev(impl_->rk, RD_KAFKA_V_RKT(rkt),
                                RD_KAFKA_V_PARTITION(event.partition), RD_KAFKA_V_VALUE(value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    } else {
        err = rd_kafka_producev(impl_->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(event.key.data(), event.key.size()),
                                RD_KAFKA_V_PARTITION(event.partition), RD_KAFKA_V_VALUE(value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++impl_->in_flight;
        ++impl_->txn_records;
        return ProduceStatus::Queued;
    }
    rd_kafka_headers_destroy(headers);
    switch (err) {
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return ProduceStatus::QueueFull;
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
            return std::unexpected(Error{
                ErrorKind::SinkRejected,
                fmt::format("event {} is {} bytes, more than the producer's message.max.bytes; raise "
                            "sink.kafka.properties.message.max.bytes and the topic's max.message.bytes, then restart",
                            event.id, event.value.size())});
        case RD_KAFKA_RESP_ERR__FATAL: {
            std::array<char, 512> buf{};
            const auto orig = rd_kafka_fatal_error(impl_->rk, buf.data(), buf.size());
            if (!impl_->transactional_id.empty() && isFencedCode(orig)) {
                return std::unexpected(fencedError(impl_->transactional_id, buf.data()));
            }
            return std::unexpected(Error{ErrorKind::SinkFatal, "the Kafka producer is in a fatal state"});
        }
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            return std::unexpected(Error{
                ErrorKind::SinkRejected,
                fmt::format("event {}: partition {} (routing.additional_fields, placement partition) does not exist "
                            "in topic {}; give the row an existing partition (or NULL), or add partitions to the topic",
                            event.id, event.partition, event.topic)});
        default:
            return std::unexpected(Error{ErrorKind::SinkDelivery,
                                         fmt::format("producing event {} to topic {} failed: {}", event.id,
                                                     event.topic, rd_kafka_err2str(err))});
    }
}

std::expected<void, Error> KafkaSink::poll(std::chrono::milliseconds timeout, std::vector<Delivery>& out) {
    // librdkafka writes one byte per period in which the queue was not served, so one read
    // empties the pipe; another is needed only when a read fills the buffer.
    std::array<char, 64> drain{};
    while (::read(impl_->pipe_fds[0], drain.data(), drain.size()) == static_cast<ssize_t>(drain.size())) {
    }
    rd_kafka_poll(impl_->rk, static_cast<int>(timeout.count()));
    impl_->checkReachable();
    if (!impl_->collected.empty()) {
        if (out.empty()) {
            out.swap(impl_->collected);
        } else {
            std::ranges::move(impl_->collected, std::back_inserter(out));
            impl_->collected.clear();
        }
    }
    if (!impl_->auth_error.empty()) {
        return std::unexpected(Error{ErrorKind::SinkAuthentication,
                                     fmt::format("Kafka refused outboxd's credentials ({}); check "
                                                 "sink.kafka.properties sasl.mechanisms, sasl.username and "
                                                 "sasl.password (and the broker's SCRAM users or JAAS setup)",
                                                 impl_->auth_error)});
    }
    if (impl_->fatal) {
        std::array<char, 512> buf{};
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(impl_->rk, buf.data(), buf.size());
        if (!impl_->transactional_id.empty() && isFencedCode(orig)) {
            return std::unexpected(fencedError(impl_->transactional_id, buf.data()));
        }
        return std::unexpected(Error{ErrorKind::SinkFatal,
                                     fmt::format("Kafka producer fatal error {}: {}", rd_kafka_err2name(orig),
                                                 buf.data())});
    }
    return {};
}

std::size_t KafkaSink::inFlight() const { return impl_->in_flight; }

bool KafkaSink::transactional() const { return !impl_->transactional_id.empty(); }
bool KafkaSink::transactionOpen() const { return impl_->txn_open; }
std::chrono::steady_clock::time_point KafkaSink::transactionStarted() const { return impl_->txn_started; }
std::size_t KafkaSink::transactionRecords() const { return impl_->txn_records; }
std::chrono::milliseconds KafkaSink::transactionTimeout() const { return impl_->txn_timeout; }

std::expected<void, Error> KafkaSink::abortTransaction() {
    if (!impl_->txn_open) return {};
    impl_->txn_open = false;
    rd_kafka_error_t* error = rd_kafka_abort_transaction(impl_->rk, static_cast<int>(impl_->txn_timeout.count()));
    if (error == nullptr) {
        spdlog::info("Kafka transaction aborted ({} records); resuming from the last committed checkpoint",
                     impl_->txn_records);
        return {};
    }
    const auto code = rd_kafka_error_code(error);
    std::string detail = rd_kafka_error_string(error);
    const bool fatal = rd_kafka_error_is_fatal(error);
    rd_kafka_error_destroy(error);
    if (isFencedCode(code)) return std::unexpected(fencedError(impl_->transactional_id, detail));
    if (fatal) {
        std::array<char, 512> buf{};
        if (isFencedCode(rd_kafka_fatal_error(impl_->rk, buf.data(), buf.size()))) {
            return std::unexpected(fencedError(impl_->transactional_id, buf.data()));
        }
    }
    return std::unexpected(Error{ErrorKind::SinkFatal, fmt::format("could not abort the Kafka transaction: {} (the "
                                                                   "next producer with this id aborts it)",
                                                                   detail)});
}

std::expected<void, Error> KafkaSink::commitTransaction(const outbox::OutboxEvent& checkpoint) {
    if (!impl_->txn_open) return {};
    rd_kafka_topic_t* rkt = impl_->topicHandle(checkpoint.topic);
    const auto deadline = std::chrono::steady_clock::now() + impl_->txn_timeout;
    while (true) {
        void* opaque = reinterpret_cast<void*>(Impl::kCheckpointToken);
        const rd_kafka_resp_err_t err =
            rkt != nullptr
                ? rd_kafka_producev(impl_->rk, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_KEY(checkpoint.key.data(), checkpoint.key.size()),
                                    RD_KAFKA_V_VALUE(const_cast<char*>(checkpoint.value.data()), checkpoint.value.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END)
                : rd_kafka_producev(impl_->rk, RD_KAFKA_V_TOPIC(checkpoint.topic.c_str()),
                                    RD_KAFKA_V_KEY(checkpoint.key.data(), checkpoint.key.size()),
                                    RD_KAFKA_V_VALUE(const_cast<char*>(checkpoint.value.data()), checkpoint.value.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
            rd_kafka_poll(impl_->rk, 50);
            continue;
        }
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            std::array<char, 512> buf{};
            if (isFencedCode(rd_kafka_fatal_error(impl_->rk, buf.data(), buf.size()))) {
                return std::unexpected(fencedError(impl_->transactional_id, buf.data()));
            }
        }
        std::string detail = rd_kafka_err2str(err);
        if (auto aborted = abortTransaction(); !aborted) return aborted;
        return std::unexpected(Error{ErrorKind::SinkDelivery,
                                     fmt::format("could not add the checkpoint record to topic {}: {}; the Kafka "
                                                 "transaction was aborted",
                                                 checkpoint.topic, detail)});
    }
    for (int attempt = 0;; ++attempt) {
        rd_kafka_error_t* error =
            rd_kafka_commit_transaction(impl_->rk, static_cast<int>(impl_->txn_timeout.count()));
        if (error == nullptr) break;
        const auto code = rd_kafka_error_code(error);
        std::string detail = rd_kafka_error_string(error);
        const bool fatal = rd_kafka_error_is_fatal(error);
        const bool retriable = rd_kafka_error_is_retriable(error);
        rd_kafka_error_destroy(error);
        if (isFencedCode(code)) return std::unexpected(fencedError(impl_->transactional_id, detail));
        if (fatal) {
            std::array<char, 512> buf{};
            if (isFencedCode(rd_kafka_fatal_error(impl_->rk, buf.data(), buf.size()))) {
                return std::unexpected(fencedError(impl_->transactional_id, buf.data()));
            }
            impl_->txn_open = false;
            return std::unexpected(
                Error{ErrorKind::SinkFatal, fmt::format("committing the Kafka transaction failed for good: {}", detail)});
        }
        if (retriable && attempt < 3) continue;
        if (auto aborted = abortTransaction(); !aborted) return aborted;
        return std::unexpected(Error{ErrorKind::SinkDelivery,
                                     fmt::format("committing the Kafka transaction failed ({}); it was aborted",
                                                 detail)});
    }
    impl_->txn_open = false;
    if (!impl_->checkpoint_error.empty()) {
        // A committed transaction whose checkpoint record may not be in the log (an acknowledgement
        // without an offset): the relay starts again from the checkpoint it can read, which is never
        // later than this one, so events may be sent twice but none is lost.
        return std::unexpected(Error{ErrorKind::SinkDelivery,
                                     fmt::format("the checkpoint record of a committed transaction is not known to "
                                                 "be written ({}); starting again from the last checkpoint read back",
                                                 impl_->checkpoint_error)});
    }
    return {};
}

std::expected<void, Error> KafkaSink::ensureCompactedTopic(const std::string& topic) {
    std::array<char, 512> errstr{};
    rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(topic.c_str(), 1, -1, errstr.data(), errstr.size());
    if (new_topic == nullptr) {
        return std::unexpected(Error{ErrorKind::SinkCreate,
                                     fmt::format("sink.kafka.checkpoint_topic '{}': {}", topic, errstr.data())});
    }
    (void)rd_kafka_NewTopic_set_config(new_topic, "cleanup.policy", "compact");
    rd_kafka_queue_t* queue = rd_kafka_queue_new(impl_->rk);
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(impl_->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    (void)rd_kafka_AdminOptions_set_operation_timeout(options, 30000, errstr.data(), errstr.size());
    rd_kafka_CreateTopics(impl_->rk, &new_topic, 1, options, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 60000);
    std::expected<void, Error> result{};
    if (event == nullptr) {
        result = std::unexpected(Error{ErrorKind::SinkDelivery,
                                       fmt::format("creating the checkpoint topic {} timed out", topic)});
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        result = std::unexpected(Error{ErrorKind::SinkDelivery, fmt::format("creating the checkpoint topic {}: {}",
                                                                            topic, rd_kafka_event_error_string(event))});
    } else {
        std::size_t count = 0;
        const rd_kafka_topic_result_t** results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
        for (std::size_t i = 0; i < count; ++i) {
            const auto err = rd_kafka_topic_result_error(results[i]);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                spdlog::info("created the checkpoint topic {} (cleanup.policy=compact)", topic);
            } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            } else if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                       err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
                spdlog::warn("not allowed to create the checkpoint topic {} ({}); it must exist, with "
                             "cleanup.policy=compact",
                             topic, rd_kafka_err2str(err));
            } else {
                const char* msg = rd_kafka_topic_result_error_string(results[i]);
                result = std::unexpected(Error{ErrorKind::SinkDelivery,
                                               fmt::format("creating the checkpoint topic {}: {}", topic,
                                                           msg != nullptr ? msg : rd_kafka_err2str(err))});
            }
        }
    }
    if (event != nullptr) rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(new_topic);
    rd_kafka_queue_destroy(queue);
    return result;
}

std::expected<std::optional<std::string>, Error> readLatestCommitted(const config::KafkaConfig& config,
                                                                    const std::string& topic, const std::string& key,
                                                                    std::chrono::milliseconds timeout) {
    std::array<char, 512> errstr{};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto fail = [&](ErrorKind kind, std::string message) {
        return std::unexpected(Error{kind, std::move(message)});
    };
    std::vector<std::pair<std::string, std::string>> settings{{"bootstrap.servers", config.brokers}};
    for (const auto& [name, value] : config.properties) {
        if (name.starts_with("security.") || name.starts_with("ssl.") || name.starts_with("sasl.") ||
            name == "client.dns.lookup" || name == "broker.address.family" || name == "log_level" ||
            name == "debug") {
            settings.emplace_back(name, value);
        }
    }
    settings.insert(settings.end(), {{"group.id", "outboxd-checkpoint-reader"},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"enable.partition.eof", "true"},
                                     {"isolation.level", "read_committed"},
                                     {"allow.auto.create.topics", "false"}});
    for (const auto& [name, value] : settings) {
        if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size()) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return fail(ErrorKind::SinkCreate, fmt::format("checkpoint reader: {}: {}", name,
                                                           isSecretProperty(name) ? "invalid value" : errstr.data()));
        }
    }
    rd_kafka_conf_set_log_cb(conf, &KafkaSink::Impl::onLog);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr.data(), errstr.size());
    if (rk == nullptr) {
        rd_kafka_conf_destroy(conf);
        return fail(ErrorKind::SinkCreate, fmt::format("could not create the checkpoint reader: {}", errstr.data()));
    }
    struct Closer {
        rd_kafka_t* rk;
        ~Closer() {
            rd_kafka_consumer_close(rk);
            rd_kafka_destroy(rk);
        }
    } closer{rk};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left = [&] {
        return static_cast<int>(std::max<std::int64_t>(
            1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
                   .count()));
    };
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    const auto md_err = rd_kafka_metadata(rk, 0, rkt, &md, left());
    rd_kafka_topic_destroy(rkt);
    if (md_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fail(ErrorKind::SinkDelivery, fmt::format("reading the checkpoint topic {}: metadata: {}", topic,
                                                         rd_kafka_err2str(md_err)));
    }
    std::vector<std::int32_t> partitions;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < md->topics[0].partition_cnt; ++i) partitions.push_back(md->topics[0].partitions[i].id);
    }
    rd_kafka_metadata_destroy(md);
    std::optional<std::string> latest;
    // Each partition is read from a window before its end, widened until the key is found or the
    // window reaches the partition's start: a checkpoint topic holds the newest record of every
    // slot near its end, and older ones until compaction removes them.
    for (const std::int32_t partition : partitions) {
        std::int64_t low = 0;
        std::int64_t high = 0;
        if (auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, left());
            err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return fail(ErrorKind::SinkDelivery, fmt::format("reading the checkpoint topic {} [{}]: {}", topic,
                                                             partition, rd_kafka_err2str(err)));
        }
        std::int64_t window = 1024;
        std::optional<std::string> found;
        for (std::int64_t from = std::max(low, high - window); high > low; from = std::max(low, high - window)) {
            rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset = from;
            const auto assigned = rd_kafka_assign(rk, list);
            rd_kafka_topic_partition_list_destroy(list);
            if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) {
                return fail(ErrorKind::SinkDelivery, fmt::format("reading the checkpoint topic {}: {}", topic,
                                                                 rd_kafka_err2str(assigned)));
            }
            bool eof = false;
            while (!eof) {
                if (std::chrono::steady_clock::now() >= deadline) {
                    (void)rd_kafka_assign(rk, nullptr);
                    return fail(ErrorKind::SinkDelivery,
                                fmt::format("reading the checkpoint of slot {} from topic {} [{}] took longer than {} "
                                            "ms (is a transaction on it left open?); retrying",
                                            key, topic, partition, timeout.count()));
                }
                rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk, 200);
                if (msg == nullptr) continue;
                if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    eof = true;
                } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                    std::string detail = rd_kafka_message_errstr(msg);
                    rd_kafka_message_destroy(msg);
                    (void)rd_kafka_assign(rk, nullptr);
                    return fail(ErrorKind::SinkDelivery,
                                fmt::format("reading the checkpoint topic {}: {}", topic, detail));
                } else if (msg->key != nullptr &&
                           std::string_view(static_cast<const char*>(msg->key), msg->key_len) == key) {
                    if (msg->payload == nullptr) {
                        found = std::string();
                    } else {
                        found = std::string(static_cast<const char*>(msg->payload), msg->len);
                    }
                }
                rd_kafka_message_destroy(msg);
            }
            (void)rd_kafka_assign(rk, nullptr);
            if (found || from == low) break;
            window *= 16;
        }
        if (found) latest = std::move(found);
    }
    return latest;
}

int KafkaSink::eventFd() const { return impl_->pipe_fds[0]; }

std::optional<bool> KafkaSink::reachable() const { return impl_->reachable; }

std::size_t KafkaSink::topicHandles() const { return impl_->topics.size(); }

void KafkaSink::setUnreachableWarningAfterForTesting(std::chrono::milliseconds after) {
    impl_->unreachable_warning_after = after;
}

void KafkaSink::raiseFatalErrorForTesting(const std::string& reason) {
    rd_kafka_test_fatal_error(impl_->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason.c_str());
}

}  // namespace outboxd::sink
