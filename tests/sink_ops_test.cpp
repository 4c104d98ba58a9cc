// KafkaSink's operator side against librdkafka's mock cluster: per-key order through a broker
// outage, topic warming off the caller's thread, bounded topic handles, broker reachability and
// one log line per librdkafka failure.
#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "sink/kafka_sink.h"

using namespace outboxd;
using namespace std::chrono_literals;

namespace {

struct Mock {
    rd_kafka_t* owner = nullptr;
    rd_kafka_mock_cluster_t* cluster = nullptr;
    std::string bootstraps;

    Mock() {
        char err[256];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
        owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        REQUIRE(owner != nullptr);
        cluster = rd_kafka_mock_cluster_new(owner, 1);
        REQUIRE(cluster != nullptr);
        bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
        REQUIRE(rd_kafka_mock_topic_create(cluster, "events", 3, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ~Mock() {
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(owner);
    }
};

config::KafkaConfig kafkaConfig(const Mock& mock, std::map<std::string, std::string> props = {}) {
    config::KafkaConfig c;
    c.brokers = mock.bootstraps;
    props.emplace("log_level", "0");
    c.properties = std::move(props);
    return c;
}

outbox::OutboxEvent keyed(std::string topic, std::string key, std::string value) {
    outbox::OutboxEvent e;
    e.topic = std::move(topic);
    e.key = std::move(key);
    e.value = value;
    e.id = value;
    e.type = "T";
    e.aggregate_type = "user";
    e.content_type = "application/json";
    return e;
}

std::vector<sink::Delivery> pollFor(sink::Sink& s, std::size_t n, std::chrono::milliseconds timeout) {
    std::vector<sink::Delivery> out;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n && std::chrono::steady_clock::now() < until) REQUIRE(s.poll(50ms, out));
    return out;
}

// The values of every record in topic "events", partition by partition, in offset order.
std::vector<std::string> readBack(const Mock& mock, std::size_t expected) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", mock.bootstraps.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "readback", err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    REQUIRE(consumer != nullptr);
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(3);
    for (int p = 0; p < 3; ++p) {
        rd_kafka_topic_partition_list_add(parts, "events", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    REQUIRE(rd_kafka_assign(consumer, parts) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    std::vector<std::string> values;
    auto until = std::chrono::steady_clock::now() + 10s;
    while (values.size() < expected && std::chrono::steady_clock::now() < until) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
        if (m == nullptr) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) values.emplace_back(static_cast<const char*>(m->payload), m->len);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return values;
}

// Captures what is logged, for the assertions on log lines.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::vector<std::pair<spdlog::level::level_enum, std::string>> lines() {
        std::lock_guard lock(mutex_);
        return lines_;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        lines_.emplace_back(msg.level, std::string(msg.payload.data(), msg.payload.size()));
    }
    void flush_() override {}

private:
    std::vector<std::pair<spdlog::level::level_enum, std::string>> lines_;
};

struct CaptureLogs {
    std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>();
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    CaptureLogs() {
        auto logger = std::make_shared<spdlog::logger>("capture", sink);
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(logger);
    }
    ~CaptureLogs() { spdlog::set_default_logger(previous); }
};

}  // namespace

TEST_CASE("outboxd's producer never expires a queued record", "[sink]") {
    auto defaults = sink::defaultProducerProperties();
    auto it = std::ranges::find_if(defaults, [](const auto& p) { return p.first == "message.timeout.ms"; });
    REQUIRE(it != defaults.end());
    CHECK(it->second == "0");
}

TEST_CASE("two records of one key stay in order through a leader outage longer than a short timeout", "[sink]") {
    // With a short message.timeout.ms the first record expires while the leader is down and the
    // second, produced later, is delivered: the key's order has a gap. With outboxd's default
    // both wait for the leader and land in produce order.
    const bool short_timeout = GENERATE(false, true);
    CAPTURE(short_timeout);
    Mock mock;
    std::map<std::string, std::string> props{
        {"retry.backoff.ms", "50"}, {"reconnect.backoff.ms", "50"}, {"reconnect.backoff.max.ms", "100"}};
    if (short_timeout) props.emplace("message.timeout.ms", "1000");
    auto created = sink::KafkaSink::create(kafkaConfig(mock, props));
    REQUIRE(created);
    auto& s = **created;
    // Warm: the topic's partitions and leader are known before the outage.
    REQUIRE(s.produce(keyed("events", "user-1", "warm"), 0));
    REQUIRE(pollFor(s, 1, 10s).size() == 1);

    rd_kafka_mock_broker_set_down(mock.cluster, 1);
    std::this_thread::sleep_for(200ms);
    REQUIRE(s.produce(keyed("events", "user-1", "first"), 1));
    std::vector<sink::Delivery> out;
    auto until = std::chrono::steady_clock::now() + 1800ms;
    while (std::chrono::steady_clock::now() < until) REQUIRE(s.poll(50ms, out));
    REQUIRE(s.produce(keyed("events", "user-1", "second"), 2));
    rd_kafka_mock_broker_set_up(mock.cluster, 1);
    auto rest = pollFor(s, 2 - out.size(), 20s);
    std::ranges::move(rest, std::back_inserter(out));
    REQUIRE(out.size() == 2);
    bool first_ok = false;
    bool second_ok = false;
    for (const auto& d : out) (d.token == 1 ? first_ok : second_ok) = d.ok;
    if (short_timeout) {
        CHECK_FALSE(first_ok);
        CHECK(second_ok);
        return;
    }
    CHECK(first_ok);
    CHECK(second_ok);
    auto values = readBack(mock, 3);
    REQUIRE(values.size() == 3);
    CHECK(values == std::vector<std::string>{"warm", "first", "second"});
}

TEST_CASE("producing to new topics does not wait for their metadata", "[sink]") {
    Mock mock;
    rd_kafka_mock_broker_set_down(mock.cluster, 1);
    auto created = sink::KafkaSink::create(kafkaConfig(mock));
    REQUIRE(created);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        auto st = (*created)->produce(keyed("new-topic-" + std::to_string(i), "k", "v"), static_cast<std::uint64_t>(i));
        REQUIRE(st);
    }
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < 1s);
    CHECK((*created)->topicHandles() == 20);
}

TEST_CASE("topic handles are bounded", "[sink]") {
    Mock mock;
    rd_kafka_mock_broker_set_down(mock.cluster, 1);
    auto created = sink::KafkaSink::create(kafkaConfig(mock, {{"queue.buffering.max.messages", "100000"}}));
    REQUIRE(created);
    for (int i = 0; i < 2500; ++i) {
        REQUIRE((*created)->produce(keyed("t" + std::to_string(i), "k", "v"), static_cast<std::uint64_t>(i)));
        REQUIRE((*created)->topicHandles() <= 1000);
    }
    CHECK((*created)->topicHandles() > 0);
}

TEST_CASE("broker reachability is reported and a long outage is warned about once", "[sink]") {
    CaptureLogs logs;
    Mock mock;
    auto created = sink::KafkaSink::create(kafkaConfig(mock, {{"reconnect.backoff.ms", "100"},
                                                              {"reconnect.backoff.max.ms", "200"}}));
    REQUIRE(created);
    auto& s = **created;
    s.setUnreachableWarningAfterForTesting(1500ms);
    REQUIRE(s.produce(keyed("events", "k", "v"), 0));
    std::vector<sink::Delivery> out;
    auto until = std::chrono::steady_clock::now() + 10s;
    while (s.reachable() != std::optional<bool>(true) && std::chrono::steady_clock::now() < until) {
        REQUIRE(s.poll(50ms, out));
    }
    REQUIRE(s.reachable() == std::optional<bool>(true));

    rd_kafka_mock_broker_set_down(mock.cluster, 1);
    until = std::chrono::steady_clock::now() + 6s;
    while (std::chrono::steady_clock::now() < until) REQUIRE(s.poll(50ms, out));
    CHECK(s.reachable() == std::optional<bool>(false));
    int warnings = 0;
    int fail_lines = 0;
    for (const auto& [level, text] : logs.sink->lines()) {
        if (level >= spdlog::level::warn && text.starts_with("no Kafka broker has been reachable")) ++warnings;
        if (level >= spdlog::level::warn && text.starts_with("librdkafka FAIL")) ++fail_lines;
    }
    CHECK(warnings == 1);
    // A broker failure reaches the error callback and the FAIL log: it is logged once, by the former.
    CHECK(fail_lines == 0);
}

TEST_CASE("reachability follows acknowledgements when statistics are turned off", "[sink]") {
    Mock mock;
    auto created = sink::KafkaSink::create(kafkaConfig(mock, {{"statistics.interval.ms", "0"}}));
    REQUIRE(created);
    CHECK_FALSE((*created)->reachable().has_value());
    REQUIRE((*created)->produce(keyed("events", "k", "v"), 0));
    REQUIRE(pollFor(**created, 1, 10s).size() == 1);
    CHECK((*created)->reachable() == std::optional<bool>(true));
}
