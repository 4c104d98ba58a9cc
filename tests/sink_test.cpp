// KafkaSink against librdkafka's built-in mock cluster, with faults injected.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "sink/kafka_sink.h"

using namespace outboxd;
using namespace std::chrono_literals;

namespace {

// Owns a mock cluster (it lives inside a throwaway producer handle).
struct MockCluster {
    rd_kafka_t* owner = nullptr;
    rd_kafka_mock_cluster_t* cluster = nullptr;
    std::string bootstraps;

    explicit MockCluster(int brokers = 1) {
        char err[256];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
        owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        REQUIRE(owner != nullptr);
        cluster = rd_kafka_mock_cluster_new(owner, brokers);
        REQUIRE(cluster != nullptr);
        bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
        REQUIRE(rd_kafka_mock_topic_create(cluster, "events", 3, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ~MockCluster() {
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(owner);
    }
};

config::KafkaConfig kafkaConfig(const MockCluster& mock, std::map<std::string, std::string> props = {}) {
    config::KafkaConfig c;
    c.brokers = mock.bootstraps;
    props.emplace("log_level", "0");
    c.properties = std::move(props);
    return c;
}

outbox::OutboxEvent event(int i) {
    outbox::OutboxEvent e;
    e.topic = "events";
    e.key = "key-" + std::to_string(i % 7);
    e.value = "value-" + std::to_string(i);
    e.id = "id-" + std::to_string(i);
    e.type = "T";
    e.aggregate_type = "user";
    e.content_type = "application/json";
    return e;
}

std::vector<sink::Delivery> pollUntil(sink::Sink& s, std::size_t n, std::chrono::milliseconds timeout) {
    std::vector<sink::Delivery> out;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n && std::chrono::steady_clock::now() < until) {
        auto ok = s.poll(50ms, out);
        REQUIRE(ok);
    }
    return out;
}

}  // namespace

TEST_CASE("every produced record is acknowledged with its token", "[sink]") {
    MockCluster mock;
    auto sink = sink::KafkaSink::create(kafkaConfig(mock));
    REQUIRE(sink);
    auto& s = **sink;
    for (int i = 0; i < 100; ++i) {
        auto st = s.produce(event(i), static_cast<std::uint64_t>(1000 + i));
        REQUIRE(st);
        CHECK(*st == sink::ProduceStatus::Queued);
    }
    CHECK(s.inFlight() == 100);
    // The event pipe becomes readable once reports are waiting.
    pollfd pfd{s.eventFd(), POLLIN, 0};
    CHECK(::poll(&pfd, 1, 5000) == 1);
    auto deliveries = pollUntil(s, 100, 10s);
    REQUIRE(deliveries.size() == 100);
    std::set<std::uint64_t> tokens;
    for (const auto& d : deliveries) {
        CHECK(d.ok);
        CHECK(d.topic == "events");
        tokens.insert(d.token);
    }
    CHECK(tokens.size() == 100);
    CHECK(*tokens.begin() == 1000);
    CHECK(*tokens.rbegin() == 1099);
    CHECK(s.inFlight() == 0);
}

TEST_CASE("retriable broker errors are retried by the producer, not reported", "[sink]") {
    MockCluster mock;
    rd_kafka_mock_push_request_errors(mock.cluster, /* ApiKey Produce */ 0, 3, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    auto sink = sink::KafkaSink::create(kafkaConfig(mock, {{"retry.backoff.ms", "10"}}));
    REQUIRE(sink);
    for (int i = 0; i < 10; ++i) REQUIRE((*sink)->produce(event(i), static_cast<std::uint64_t>(i)));
    auto deliveries = pollUntil(**sink, 10, 20s);
    REQUIRE(deliveries.size() == 10);
    for (const auto& d : deliveries) CHECK(d.ok);
}

TEST_CASE("a record that cannot be delivered in time is reported as failed", "[sink]") {
    MockCluster mock;
    rd_kafka_mock_broker_set_down(mock.cluster, 1);
    auto sink = sink::KafkaSink::create(kafkaConfig(mock, {{"message.timeout.ms", "300"}}));
    REQUIRE(sink);
    REQUIRE((*sink)->produce(event(1), 7));
    auto deliveries = pollUntil(**sink, 1, 20s);
    REQUIRE(deliveries.size() == 1);
    CHECK_FALSE(deliveries[0].ok);
    CHECK(deliveries[0].token == 7);
    CHECK_FALSE(deliveries[0].error.empty());
}

TEST_CASE("a full producer queue is backpressure, not an error", "[sink]") {
    MockCluster mock;
    rd_kafka_mock_broker_set_down(mock.cluster, 1);
    auto sink = sink::KafkaSink::create(kafkaConfig(mock, {{"queue.buffering.max.messages", "5"}}));
    REQUIRE(sink);
    for (int i = 0; i < 5; ++i) {
        auto st = (*sink)->produce(event(i), static_cast<std::uint64_t>(i));
        REQUIRE(st);
        CHECK(*st == sink::ProduceStatus::Queued);
    }
    auto st = (*sink)->produce(event(5), 5);
    REQUIRE(st);
    CHECK(*st == sink::ProduceStatus::QueueFull);
    // When the broker is back, the queue drains and the record can be queued.
    rd_kafka_mock_broker_set_up(mock.cluster, 1);
    auto deliveries = pollUntil(**sink, 5, 20s);
    CHECK(deliveries.size() == 5);
    st = (*sink)->produce(event(5), 5);
    REQUIRE(st);
    CHECK(*st == sink::ProduceStatus::Queued);
}

TEST_CASE("a fatal producer error surfaces from poll as SinkFatal", "[sink]") {
    MockCluster mock;
    auto sink = sink::KafkaSink::create(kafkaConfig(mock));
    REQUIRE(sink);
    (*sink)->raiseFatalErrorForTesting("injected by the test");
    std::vector<sink::Delivery> out;
    std::expected<void, Error> polled;
    for (int i = 0; i < 50 && polled; ++i) polled = (*sink)->poll(20ms, out);
    REQUIRE_FALSE(polled);
    CHECK(polled.error().kind == ErrorKind::SinkFatal);
    CHECK(isRetriable(polled.error().kind));
}

TEST_CASE("properties that would weaken delivery are refused", "[sink]") {
    MockCluster mock;
    auto weak_acks = sink::KafkaSink::create(kafkaConfig(mock, {{"acks", "1"}}));
    REQUIRE_FALSE(weak_acks);
    CHECK(weak_acks.error().kind == ErrorKind::SinkCreate);
    CHECK_THAT(weak_acks.error().message, Catch::Contains("acks"));
    auto no_idem = sink::KafkaSink::create(kafkaConfig(mock, {{"enable.idempotence", "false"}}));
    REQUIRE_FALSE(no_idem);
    auto only_errors = sink::KafkaSink::create(kafkaConfig(mock, {{"delivery.report.only.error", "true"}}));
    REQUIRE_FALSE(only_errors);
    CHECK_THAT(only_errors.error().message, Catch::Contains("delivery.report.only.error"));
    auto unknown = sink::KafkaSink::create(kafkaConfig(mock, {{"no.such.property", "1"}}));
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message, Catch::Contains("no.such.property"));
    auto secret = sink::KafkaSink::create(kafkaConfig(mock, {{"sasl.password", "hunter2"}, {"acks", "all"}}));
    // A valid secret property is accepted; when refused its value never shows.
    if (!secret) CHECK_THAT(secret.error().message, !Catch::Contains("hunter2"));
}

TEST_CASE("secret property names are recognised", "[sink]") {
    CHECK(sink::isSecretProperty("sasl.password"));
    CHECK(sink::isSecretProperty("ssl.key.password"));
    CHECK(sink::isSecretProperty("sasl.oauthbearer.client.secret"));
    CHECK_FALSE(sink::isSecretProperty("linger.ms"));
}

TEST_CASE("destroying the sink releases the producer and its threads", "[sink]") {
    MockCluster mock;
    auto threads = [] {
        std::size_t n = 0;
        for (auto it = std::filesystem::directory_iterator("/proc/self/task"); it != std::filesystem::directory_iterator();
             ++it) {
            ++n;
        }
        return n;
    };
    const auto before = threads();
    {
        auto sink = sink::KafkaSink::create(kafkaConfig(mock));
        REQUIRE(sink);
        REQUIRE((*sink)->produce(event(1), 1));
        CHECK(threads() > before);
    }
    // librdkafka joins its threads in rd_kafka_destroy; give the OS a moment to reap them.
    bool released = false;
    for (int i = 0; i < 50 && !released; ++i) {
        released = threads() == before;
        if (!released) std::this_thread::sleep_for(20ms);
    }
    CHECK(released);
}

// The loss seen with topics the broker creates on first use: the partition's first batch is refused
// (NOT_LEADER while the partition starts) while the next batch is already sent; the broker, with no
// state for the producer on that partition, writes the second, and librdkafka then acknowledges
// the first one implicitly although it is not in the log. The mock broker, like Kafka's, accepts
// any first sequence from a non-transactional idempotent producer.
TEST_CASE("a record acknowledged only by a later batch of its partition is not taken as delivered", "[sink]") {
    MockCluster mock;
    // The first Produce request is refused, its answer 400 ms late: the second is sent meanwhile.
    rd_kafka_mock_broker_push_request_error_rtts(mock.cluster, 1, /* ApiKey Produce */ 0, 1,
                                                 RD_KAFKA_RESP_ERR_NOT_LEADER_OR_FOLLOWER, 400);
    auto sink = sink::KafkaSink::create(kafkaConfig(mock, {{"retry.backoff.ms", "10"}, {"linger.ms", "0"}}));
    REQUIRE(sink);
    auto first = event(1);
    first.partition = 0;
    auto second = event(2);
    second.partition = 0;
    REQUIRE((*sink)->produce(first, 1));
    std::vector<sink::Delivery> deliveries;
    const auto sent_until = std::chrono::steady_clock::now() + 100ms;
    while (std::chrono::steady_clock::now() < sent_until) REQUIRE((*sink)->poll(10ms, deliveries));
    REQUIRE(deliveries.empty());
    REQUIRE((*sink)->produce(second, 2));
    for (auto& d : pollUntil(**sink, 2, 20s)) deliveries.push_back(std::move(d));
    REQUIRE(deliveries.size() == 2);
    std::map<std::uint64_t, sink::Delivery> by_token;
    for (auto& d : deliveries) by_token[d.token] = d;
    REQUIRE(by_token.size() == 2);
    INFO("first record: " << by_token[1].error);
    CHECK(by_token[2].ok);
    // Without an offset the first record's report is a failure to send again from, not a delivery.
    CHECK_FALSE(by_token[1].ok);
    CHECK_FALSE(by_token[1].permanent);
    CHECK(by_token[1].error.find("without an offset") != std::string::npos);
}
