// The transactional KafkaSink (exactly-once mode) against librdkafka's mock cluster: commits with
// the checkpoint record, the checkpoint read back by key, and fencing by a second producer with
// the same transactional id.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "sink/kafka_sink.h"

using namespace outboxd;
using namespace std::chrono_literals;

namespace {

struct MockCluster {
    rd_kafka_t* owner = nullptr;
    rd_kafka_mock_cluster_t* cluster = nullptr;
    std::string bootstraps;

    MockCluster() {
        char err[256];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
        owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        REQUIRE(owner != nullptr);
        cluster = rd_kafka_mock_cluster_new(owner, 1);
        REQUIRE(cluster != nullptr);
        bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
        REQUIRE(rd_kafka_mock_topic_create(cluster, "events", 3, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
        REQUIRE(rd_kafka_mock_topic_create(cluster, "checkpoints", 1, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ~MockCluster() {
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(owner);
    }
};

config::KafkaConfig kafkaConfig(const MockCluster& mock) {
    config::KafkaConfig c;
    c.brokers = mock.bootstraps;
    c.delivery = config::Delivery::ExactlyOnce;
    c.properties = {{"log_level", "0"}, {"transaction.timeout.ms", "10000"}};
    return c;
}

outbox::OutboxEvent event(int i) {
    outbox::OutboxEvent e;
    e.topic = "events";
    e.key = "key-" + std::to_string(i % 5);
    e.value = "value-" + std::to_string(i);
    e.id = "id-" + std::to_string(i);
    e.type = "T";
    e.aggregate_type = "user";
    return e;
}

outbox::OutboxEvent checkpoint(const std::string& slot, const std::string& value) {
    outbox::OutboxEvent e;
    e.topic = "checkpoints";
    e.key = slot;
    e.value = value;
    return e;
}

}  // namespace

TEST_CASE("a transactional sink commits its records with the checkpoint, which reads back by key",
          "[sink][eos]") {
    MockCluster mock;
    const auto config = kafkaConfig(mock);
    auto created = sink::KafkaSink::create(config, "outboxd-test-slot");
    if (!created) FAIL(created.error().message);
    auto& s = **created;
    CHECK(s.transactional());
    CHECK_FALSE(s.transactionOpen());

    auto none = sink::readLatestCommitted(config, "checkpoints", "slot_a", 20s);
    if (!none) FAIL(none.error().message);
    CHECK_FALSE(none->has_value());

    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 10; ++i) REQUIRE(s.produce(event(round * 10 + i), static_cast<std::uint64_t>(i)));
        CHECK(s.transactionOpen());
        CHECK(s.transactionRecords() == 10);
        auto committed = s.commitTransaction(checkpoint("slot_a", "cp-" + std::to_string(round)));
        if (!committed) FAIL(committed.error().message);
        CHECK_FALSE(s.transactionOpen());
        // Every record of the committed transaction was delivered (the commit flushes them);
        // the checkpoint record's report is the sink's own.
        std::vector<sink::Delivery> out;
        REQUIRE(s.poll(0ms, out));
        CHECK(out.size() == 10);
        for (const auto& d : out) CHECK(d.ok);
        CHECK(s.inFlight() == 0);
    }
    REQUIRE(s.produce(event(99), 99));
    auto other = s.commitTransaction(checkpoint("slot_b", "cp-b"));
    REQUIRE(other);

    auto read = sink::readLatestCommitted(config, "checkpoints", "slot_a", 20s);
    if (!read) FAIL(read.error().message);
    REQUIRE(read->has_value());
    CHECK(**read == "cp-2");
    auto read_b = sink::readLatestCommitted(config, "checkpoints", "slot_b", 20s);
    REQUIRE(read_b);
    REQUIRE(read_b->has_value());
    CHECK(**read_b == "cp-b");
}

TEST_CASE("an aborted transaction leaves nothing open, and the next produce opens a new one", "[sink][eos]") {
    MockCluster mock;
    auto created = sink::KafkaSink::create(kafkaConfig(mock), "outboxd-test-abort");
    if (!created) FAIL(created.error().message);
    auto& s = **created;
    REQUIRE(s.produce(event(1), 1));
    REQUIRE(s.transactionOpen());
    auto aborted = s.abortTransaction();
    if (!aborted) FAIL(aborted.error().message);
    CHECK_FALSE(s.transactionOpen());
    std::vector<sink::Delivery> out;
    REQUIRE(s.poll(100ms, out));
    REQUIRE(s.produce(event(2), 2));
    CHECK(s.transactionOpen());
    CHECK(s.transactionRecords() == 1);
    REQUIRE(s.commitTransaction(checkpoint("slot", "cp")));
}

TEST_CASE("a commit refused as fenced is fatal and names the transactional id", "[sink][eos]") {
    // The mock cluster does not bump epochs for a second producer with the same id (the real
    // broker does: scenario second_exactly_once_relay_fences_the_first); the coordinator's
    // answer to a fenced producer is injected instead.
    MockCluster mock;
    const auto config = kafkaConfig(mock);
    auto first = sink::KafkaSink::create(config, "outboxd-42-shared_slot");
    if (!first) FAIL(first.error().message);
    REQUIRE((*first)->produce(event(1), 1));
    REQUIRE((*first)->commitTransaction(checkpoint("shared_slot", "cp-1")));

    rd_kafka_mock_push_request_errors(mock.cluster, /* ApiKey EndTxn */ 26, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    REQUIRE((*first)->produce(event(2), 2));
    auto result = (*first)->commitTransaction(checkpoint("shared_slot", "cp-2"));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind == ErrorKind::SinkFenced);
    CHECK_FALSE(isRetriable(result.error().kind));
    CHECK_THAT(result.error().message, Catch::Contains("transactional.id 'outboxd-42-shared_slot' was fenced"));
}

TEST_CASE("a record the broker refuses makes the commit fail and abort; the next transaction commits",
          "[sink][eos]") {
    // A refused record puts librdkafka's transaction in the abortable state: commit_transaction
    // fails, and the sink aborts it so that the relay can send again from its checkpoint.
    MockCluster mock;
    auto created = sink::KafkaSink::create(kafkaConfig(mock), "outboxd-test-abortable");
    if (!created) FAIL(created.error().message);
    auto& s = **created;
    rd_kafka_mock_push_request_errors(mock.cluster, /* ApiKey Produce */ 0, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    REQUIRE(s.produce(event(1), 1));
    auto result = s.commitTransaction(checkpoint("slot", "cp-1"));
    REQUIRE_FALSE(result.has_value());
    INFO(result.error().message);
    CHECK(result.error().kind == ErrorKind::SinkDelivery);
    CHECK(isRetriable(result.error().kind));
    CHECK_THAT(result.error().message, Catch::Contains("aborted"));
    CHECK_FALSE(s.transactionOpen());

    // The refused request leaves a gap in the partition's sequence numbers; librdkafka recovers by
    // bumping the producer epoch, which aborts the transaction open at that moment too (seen:
    // "skipped sequence numbers"). Each such failure is an aborted, retriable one, and a later
    // transaction commits.
    bool committed = false;
    for (int attempt = 0; attempt < 10 && !committed; ++attempt) {
        auto produced = s.produce(event(2 + attempt), static_cast<std::uint64_t>(2 + attempt));
        if (!produced) {
            // (Opening the next transaction can be refused while librdkafka recovers.)
            INFO(produced.error().message);
            CHECK(isRetriable(produced.error().kind));
            std::vector<sink::Delivery> out;
            REQUIRE(s.poll(500ms, out));
            continue;
        }
        CHECK(s.transactionOpen());
        auto again = s.commitTransaction(checkpoint("slot", "cp-" + std::to_string(2 + attempt)));
        CHECK_FALSE(s.transactionOpen());
        if (again) {
            committed = true;
        } else {
            INFO(again.error().message);
            CHECK(isRetriable(again.error().kind));
            CHECK_THAT(again.error().message, Catch::Contains("aborted"));
        }
        // The relay waits before it starts again; so does this loop, while the epoch is bumped.
        std::vector<sink::Delivery> out;
        REQUIRE(s.poll(500ms, out));
    }
    CHECK(committed);
}
