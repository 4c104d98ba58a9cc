#include "sink/kafka_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <thread>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

namespace outboxd::sink {

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
    };
}

bool isSecretProperty(std::string_view name) {
    std::string lower(name);
    std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lower.find("password") != std::string::npos || lower.find("secret") != std::string::npos ||
           lower.find("key") != std::string::npos || lower.find("token") != std::string::npos ||
           lower.find("jaas") != std::string::npos;
}

struct KafkaSink::Impl {
    rd_kafka_t* rk = nullptr;
    rd_kafka_queue_t* main_queue = nullptr;
    std::array<int, 2> pipe_fds{-1, -1};
    std::vector<Delivery> collected;
    std::size_t in_flight = 0;
    bool fatal = false;
    std::string auth_error;  // set by onError on an authentication failure
    // Topics whose metadata this producer has asked for (see topicHandle), with the producer's
    // handle for each, kept for the producer's life: producing through a handle spares
    // librdkafka a look-up of the topic by name (under a lock) for every record.
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, rd_kafka_topic_t*, NameHash, std::equal_to<>> topics;

    rd_kafka_topic_t* topicHandle(const std::string& topic) {
        if (auto it = topics.find(std::string_view(topic)); it != topics.end()) return it->second;
        rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        if (rkt != nullptr) warmTopic(rkt);
        topics.emplace(topic, rkt);
        return rkt;
    }

    // librdkafka looks up an unknown topic's partitions on its one-second timer, which would
    // delay the first events of every topic and every session by up to a second. Ask once,
    // synchronously, with a short timeout; on failure the timer still does it.
    void warmTopic(rd_kafka_topic_t* rkt) {
        // A topic the broker creates on first use answers "unknown" at first: ask again briefly.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
        while (std::chrono::steady_clock::now() < deadline) {
            const rd_kafka_metadata_t* md = nullptr;
            bool ready = false;
            if (rd_kafka_metadata(rk, 0, rkt, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR && md != nullptr) {
                ready = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                        md->topics[0].partition_cnt > 0;
                rd_kafka_metadata_destroy(md);
            } else {
                break;  // broker unreachable: librdkafka's own timer takes over
            }
            if (ready) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    ~Impl() {
        if (rk != nullptr) {
            rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(rk, 0);
            for (auto& [name, rkt] : topics) {
                if (rkt != nullptr) rd_kafka_topic_destroy(rkt);
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

    static void onDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
        auto* self = static_cast<Impl*>(opaque);
        Delivery d;
        d.token = reinterpret_cast<std::uintptr_t>(msg->_private);
        d.ok = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR;
        d.bytes = msg->len;
        if (msg->rkt != nullptr) d.topic = rd_kafka_topic_name(msg->rkt);
        if (!d.ok) {
            d.error = rd_kafka_err2str(msg->err);
            switch (msg->err) {
                case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
                case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
                case RD_KAFKA_RESP_ERR_INVALID_RECORD:
                case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
                case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
                case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
                case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
                    d.permanent = true;
                    break;
                default:
                    break;
            }
        }
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
        if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) {
            self->auth_error = reason;
        }
        spdlog::warn("kafka: {}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
    }

    static void onLog(const rd_kafka_t* /*rk*/, int level, const char* fac, const char* buf) {
        if (level <= 3) {
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
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr.data(), errstr.size());
    if (rk == nullptr) {
        rd_kafka_conf_destroy(conf);
        return PropertyError{"", fmt::format("sink.kafka.properties: librdkafka refuses this combination: {}",
                                             errstr.data())};
    }
    rd_kafka_destroy(rk);
    return std::nullopt;
}

KafkaSink::KafkaSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaSink::~KafkaSink() = default;

std::expected<std::unique_ptr<KafkaSink>, Error> KafkaSink::create(const config::KafkaConfig& config) {
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
    rd_kafka_conf_set_opaque(conf, impl.get());
    rd_kafka_conf_set_dr_msg_cb(conf, &Impl::onDelivery);
    rd_kafka_conf_set_error_cb(conf, &Impl::onError);
    rd_kafka_conf_set_log_cb(conf, &Impl::onLog);

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
    return std::unique_ptr<KafkaSink>(new KafkaSink(std::move(impl)));
}

std::expected<ProduceStatus, Error> KafkaSink::produce(const outbox::OutboxEvent& event, std::uint64_t token) {
    rd_kafka_topic_t* rkt = impl_->topicHandle(event.topic);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(4 + event.extra_headers.size());
    rd_kafka_header_add(headers, "id", -1, event.id.data(), static_cast<ssize_t>(event.id.size()));
    rd_kafka_header_add(headers, "type", -1, event.type.data(), static_cast<ssize_t>(event.type.size()));
    rd_kafka_header_add(headers, "aggregate_type", -1, event.aggregate_type.data(),
                        static_cast<ssize_t>(event.aggregate_type.size()));
    if (!event.content_type.empty()) {
        rd_kafka_header_add(headers, "content-type", -1, event.content_type.data(),
                            static_cast<ssize_t>(event.content_type.size()));
    }
    for (const auto& [name, value] : event.extra_headers) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                            static_cast<ssize_t>(value.size()));
    }
    void* opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(token));
    rd_kafka_resp_err_t err;
    if (rkt == nullptr) {
        // librdkafka refused a handle for this name: produce by name, which reports why.
        err = rd_kafka_producev(impl_->rk, RD_KAFKA_V_TOPIC(event.topic.c_str()),
                                RD_KAFKA_V_KEY(event.key_is_null ? nullptr : event.key.data(),
                                               event.key_is_null ? 0 : event.key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(event.value.data()), event.value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    } else if (event.key_is_null) {
        err = rd_kafka_producev(impl_->rk, RD_KAFKA_V_RKT(rkt),
                                RD_KAFKA_V_VALUE(const_cast<char*>(event.value.data()), event.value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    } else {
        err = rd_kafka_producev(impl_->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(event.key.data(), event.key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(event.value.data()), event.value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++impl_->in_flight;
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
        case RD_KAFKA_RESP_ERR__FATAL:
            return std::unexpected(Error{ErrorKind::SinkFatal, "the Kafka producer is in a fatal state"});
        default:
            return std::unexpected(Error{ErrorKind::SinkDelivery,
                                         fmt::format("producing event {} to topic {} failed: {}", event.id,
                                                     event.topic, rd_kafka_err2str(err))});
    }
}

std::expected<void, Error> KafkaSink::poll(std::chrono::milliseconds timeout, std::vector<Delivery>& out) {
    std::array<char, 64> drain{};
    while (::read(impl_->pipe_fds[0], drain.data(), drain.size()) > 0) {
    }
    rd_kafka_poll(impl_->rk, static_cast<int>(timeout.count()));
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
        return std::unexpected(Error{ErrorKind::SinkFatal,
                                     fmt::format("Kafka producer fatal error {}: {}", rd_kafka_err2name(orig),
                                                 buf.data())});
    }
    return {};
}

std::size_t KafkaSink::inFlight() const { return impl_->in_flight; }

int KafkaSink::eventFd() const { return impl_->pipe_fds[0]; }

void KafkaSink::raiseFatalErrorForTesting(const std::string& reason) {
    rd_kafka_test_fatal_error(impl_->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason.c_str());
}

}  // namespace outboxd::sink
