// The producer refuses what --check-config refuses (sink::checkProducerProperties builds the
// same configuration as KafkaSink::create, brokers aside), and both follow config's rules.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include "sink/kafka_sink.h"

using namespace outboxd;

namespace {

config::KafkaConfig withProperties(std::map<std::string, std::string> props) {
    config::KafkaConfig c;
    c.brokers = "127.0.0.1:1";  // never reached: create() does not wait for a broker
    c.properties = std::move(props);
    return c;
}

}  // namespace

TEST_CASE("the producer accepts what the configuration check accepts", "[sink][rules]") {
    const std::map<std::string, std::string> props{{"enable.idempotence", "True"}, {"acks", "ALL"},
                                                   {"partitioner", "murmur2"}};
    CHECK_FALSE(sink::checkProducerProperties(withProperties(props)).has_value());
    auto created = sink::KafkaSink::create(withProperties(props));
    if (!created) UNSCOPED_INFO(created.error().message);
    CHECK(created.has_value());
}

TEST_CASE("the producer and the check refuse the same properties", "[sink][rules]") {
    const auto [name, value, expected] = GENERATE(table<std::string, std::string, std::string>({
        {"partitioner", "random", "does not map"},
        {"transactional.id", "t1", "sets the transactional id itself"},
        {"enable.idempotence", "false", "idempotent producer"},
        {"delivery.report.only.error", "true", "must stay false"},
        {"linger.mss", "5", "sink.kafka.properties.linger.mss"},
        {"linger.ms", "abc", "sink.kafka.properties.linger.ms"},
    }));
    INFO(name << "=" << value);
    const auto checked = sink::checkProducerProperties(withProperties({{name, value}}));
    REQUIRE(checked.has_value());
    CHECK(checked->property == name);
    auto created = sink::KafkaSink::create(withProperties({{name, value}}));
    REQUIRE_FALSE(created.has_value());
    CHECK(created.error().message == checked->message);
    if (expected == "does not map") {
        CHECK_THAT(checked->message, Catch::Contains("'random' is not a partitioner that sends every event of a key to "
                                                     "one partition"));
    } else {
        CHECK_THAT(checked->message, Catch::Contains(expected));
    }
}

TEST_CASE("a combination librdkafka refuses at start is refused by the check too", "[sink][rules]") {
    const std::map<std::string, std::string> props{{"max.in.flight.requests.per.connection", "10"}};
    const auto checked = sink::checkProducerProperties(withProperties(props));
    REQUIRE(checked.has_value());
    CHECK(checked->property.empty());
    CHECK_THAT(checked->message, Catch::Contains("max.in.flight"));
    CHECK_FALSE(sink::KafkaSink::create(withProperties(props)).has_value());
}

TEST_CASE("the check builds no Kerberos producer, so it runs no kinit", "[sink][rules]") {
    const std::string marker = "/tmp/outboxd-sink-rules-kinit-" + std::to_string(::getpid());
    std::remove(marker.c_str());
    const std::map<std::string, std::string> props{{"security.protocol", "SASL_PLAINTEXT"},
                                                   {"sasl.mechanisms", "GSSAPI"},
                                                   {"sasl.kerberos.kinit.cmd", "touch " + marker}};
    const auto checked = sink::checkProducerProperties(withProperties(props));
    if (checked) UNSCOPED_INFO(checked->message);
    CHECK_FALSE(checked.has_value());
    CHECK(::access(marker.c_str(), F_OK) != 0);
    std::remove(marker.c_str());
}

TEST_CASE("in exactly-once mode the check refuses what a transactional producer refuses", "[sink][rules]") {
    // librdkafka: an explicit socket.timeout.ms must stay below transaction.timeout.ms.
    auto config = withProperties({{"transaction.timeout.ms", "1000"}, {"socket.timeout.ms", "60000"}});
    CHECK_FALSE(sink::checkProducerProperties(config).has_value());
    config.delivery = config::Delivery::ExactlyOnce;
    const auto problem = sink::checkProducerProperties(config);
    REQUIRE(problem.has_value());
    CHECK_THAT(problem->message, Catch::Contains("socket.timeout.ms"));
}
