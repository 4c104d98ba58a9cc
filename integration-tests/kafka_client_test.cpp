// The Kafka client against the Kafka 4 broker of the tests: what issue 10 relies on from
// librdkafka 2.8.0 (Debian 12's 2.0.2 could not do SCRAM with Kafka 4), checked rather than
// assumed: a consumer group's subscribe() reads what outboxd published, and a transactional
// producer's committed records reach a read_committed consumer while its aborted ones do not,
// and a second producer with the same transactional.id fences the first.
#include <catch2/catch.hpp>

#include <librdkafka/rdkafka.h>

#include <set>

#include "support.h"
#include "workload.h"

using namespace itest;

namespace {

rd_kafka_conf_t* baseConf(const std::map<std::string, std::string>& props) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    rd_kafka_conf_set(conf, "bootstrap.servers", Env::get().brokers.c_str(), err, sizeof err);
    for (const auto& [k, v] : props) {
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            throw std::runtime_error(k + ": " + err);
        }
    }
    return conf;
}

// A consumer in a group of its own, subscribed to `topics` (the group protocol, not assign()).
class GroupConsumer {
public:
    GroupConsumer(const std::vector<std::string>& topics, const std::string& group, const std::string& isolation) {
        char err[512];
        rd_kafka_conf_t* conf = baseConf({{"group.id", group},
                                          {"auto.offset.reset", "earliest"},
                                          {"enable.auto.commit", "false"},
                                          {"isolation.level", isolation},
                                          {"topic.metadata.refresh.interval.ms", "1000"}});
        rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (rk_ == nullptr) throw std::runtime_error(std::string("consumer: ") + err);
        rd_kafka_poll_set_consumer(rk_);
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
        for (const auto& t : topics) rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
        const rd_kafka_resp_err_t rc = rd_kafka_subscribe(rk_, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error(rd_kafka_err2str(rc));
    }
    ~GroupConsumer() {
        rd_kafka_consumer_close(rk_);
        rd_kafka_destroy(rk_);
    }
    GroupConsumer(const GroupConsumer&) = delete;
    GroupConsumer& operator=(const GroupConsumer&) = delete;

    // The values read until `count` arrived or the timeout passed.
    std::vector<std::string> read(std::size_t count, std::chrono::milliseconds timeout) {
        std::vector<std::string> out;
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (out.size() < count && std::chrono::steady_clock::now() < until) {
            rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 100);
            if (m == nullptr) continue;
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                out.emplace_back(static_cast<const char*>(m->payload), m->len);
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                       m->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                errors_.push_back(rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        return out;
    }
    const std::vector<std::string>& errors() const { return errors_; }

private:
    rd_kafka_t* rk_ = nullptr;
    std::vector<std::string> errors_;
};

class TxnProducer {
public:
    explicit TxnProducer(const std::string& transactional_id) {
        char err[512];
        rd_kafka_conf_t* conf = baseConf({{"transactional.id", transactional_id}, {"linger.ms", "0"}});
        rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (rk_ == nullptr) throw std::runtime_error(std::string("producer: ") + err);
    }
    ~TxnProducer() { rd_kafka_destroy(rk_); }
    TxnProducer(const TxnProducer&) = delete;
    TxnProducer& operator=(const TxnProducer&) = delete;

    // nullptr on success; the caller destroys the error.
    rd_kafka_error_t* init() { return rd_kafka_init_transactions(rk_, 30000); }
    rd_kafka_error_t* begin() { return rd_kafka_begin_transaction(rk_); }
    rd_kafka_error_t* commit() { return rd_kafka_commit_transaction(rk_, 30000); }
    rd_kafka_error_t* abort() { return rd_kafka_abort_transaction(rk_, 30000); }
    void produce(const std::string& topic, const std::string& value) {
        const rd_kafka_resp_err_t rc =
            rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic.c_str()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error(rd_kafka_err2str(rc));
    }
    rd_kafka_t* handle() { return rk_; }

private:
    rd_kafka_t* rk_ = nullptr;
};

// "" when there was no error; the error's text otherwise (and the error destroyed).
std::string text(rd_kafka_error_t* error) {
    if (error == nullptr) return "";
    std::string s = rd_kafka_error_string(error);
    if (rd_kafka_error_is_fatal(error)) s += " (fatal)";
    rd_kafka_error_destroy(error);
    return s;
}

}  // namespace

TEST_CASE("kafka4_client_subscribe_transactions_and_fencing", "[integration][kafka]") {
    INFO("librdkafka " << rd_kafka_version_str());

    // GIVEN outboxd publishing 30 events, WHEN a consumer group subscribes to the topics,
    // THEN it reads all 30 (through the group coordinator of Kafka 4's new group protocol).
    {
        auto db = Database::create("it_k4");
        Pg pg(db.dsn);
        Daemon daemon("it_k4", relayConfig(db, "it_k4"));
        daemon.start();
        waitStreaming(pg, db.name, daemon);
        writeEvents(pg, 0, 30, 3);
        GroupConsumer consumer(topicsFor("it_k4"), "it_k4_group", "read_committed");
        auto values = consumer.read(30, 60s);
        INFO(tail(daemon.log()));
        CHECK(values.size() == 30);
        CHECK(consumer.errors().empty());
        CHECK(daemon.terminate() == 0);
    }

    // GIVEN a transactional producer, WHEN it commits 3 records, aborts 4 and commits 2,
    // THEN a read_committed consumer sees exactly the 5 committed ones, a read_uncommitted one all 9.
    const std::string topic = "it_k4.txn";
    TxnProducer producer("it_k4_txn");
    REQUIRE(text(producer.init()).empty());
    REQUIRE(text(producer.begin()).empty());
    for (int i = 0; i < 3; ++i) producer.produce(topic, fmt::format("committed-{}", i));
    REQUIRE(text(producer.commit()).empty());
    REQUIRE(text(producer.begin()).empty());
    for (int i = 0; i < 4; ++i) producer.produce(topic, fmt::format("aborted-{}", i));
    REQUIRE(rd_kafka_flush(producer.handle(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    REQUIRE(text(producer.abort()).empty());
    REQUIRE(text(producer.begin()).empty());
    for (int i = 3; i < 5; ++i) producer.produce(topic, fmt::format("committed-{}", i));
    REQUIRE(text(producer.commit()).empty());

    {
        GroupConsumer committed({topic}, "it_k4_committed", "read_committed");
        auto values = committed.read(5, 60s);
        auto more = committed.read(1, 2s);
        values.insert(values.end(), more.begin(), more.end());
        std::set<std::string> got(values.begin(), values.end());
        CHECK(values.size() == 5);
        CHECK(got == std::set<std::string>{"committed-0", "committed-1", "committed-2", "committed-3", "committed-4"});
        GroupConsumer uncommitted({topic}, "it_k4_uncommitted", "read_uncommitted");
        CHECK(uncommitted.read(9, 60s).size() == 9);
    }

    // GIVEN that producer in a transaction, WHEN a second one initialises the same
    // transactional.id, THEN the first one's commit fails as fenced (fatal), and the second commits.
    REQUIRE(text(producer.begin()).empty());
    producer.produce(topic, "zombie");
    TxnProducer successor("it_k4_txn");
    REQUIRE(text(successor.init()).empty());
    const std::string fenced = text(producer.commit());
    INFO("the first producer's commit: " << fenced);
    CHECK(fenced.find("fatal") != std::string::npos);
    REQUIRE(text(successor.begin()).empty());
    successor.produce(topic, "successor");
    CHECK(text(successor.commit()).empty());
    GroupConsumer after({topic}, "it_k4_after", "read_committed");
    auto values = after.read(6, 60s);
    auto more = after.read(1, 2s);
    values.insert(values.end(), more.begin(), more.end());
    CHECK(values.size() == 6);
    CHECK(std::ranges::count(values, std::string("zombie")) == 0);
    CHECK(std::ranges::count(values, std::string("successor")) == 1);
}
