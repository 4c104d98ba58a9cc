// routing.topic_regex on a real PostgreSQL and Kafka: Debezium's route.topic.regex with groups in
// the topic, and a value the regex does not match routed to the value itself (Kafka's RegexRouter).

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

TEST_CASE("regex_routed_events_land_on_their_topics", "[integration]") {
    // GIVEN a relay whose topic comes from a regex's named groups
    auto db = Database::create("topic_regex");
    Pg pg(db.dsn);
    const int port = freePort();
    std::string yaml = relayConfig(db, "topic_regex", "", port);
    const std::string plain_topic = "  topic: \"topic_regex.{aggregatetype}\"\n";
    const auto at = yaml.find(plain_topic);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, plain_topic.size(),
                 "  topic_regex: \"(?<service>[a-z]+)\\\\.(?<entity>[A-Za-z]+)\"\n"
                 "  topic: \"topic_regex.{$service}-events.{$entity}\"\n");
    Daemon d("topic_regex", yaml);
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN rows whose aggregate types the regex matches, and one it does not, are written
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000001', 'billing.Invoice', '7', 'InvoiceIssued', '{"n": 1}'))");
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000002', 'crm.Customer', '8', 'CustomerAdded', '{"n": 2}'))");
    pg.exec(R"(INSERT INTO outbox VALUES ('00000000-0000-0000-0000-000000000003', 'topic_regex_unmatched', '9', 'Other', '{"n": 3}'))");

    // THEN each lands on the topic its groups make, and the unmatched one on its own value
    KafkaReader billing({"topic_regex.billing-events.Invoice"});
    auto b = billing.readUntil(1, 120s);
    REQUIRE(b.size() == 1);
    CHECK(b[0].headers.at("id") == "00000000-0000-0000-0000-000000000001");
    CHECK(b[0].key == std::optional<std::string>("7"));
    KafkaReader crm({"topic_regex.crm-events.Customer"});
    auto c = crm.readUntil(1, 120s);
    REQUIRE(c.size() == 1);
    CHECK(c[0].headers.at("id") == "00000000-0000-0000-0000-000000000002");
    KafkaReader unmatched({"topic_regex_unmatched"});
    auto u = unmatched.readUntil(1, 120s);
    REQUIRE(u.size() == 1);
    CHECK(u[0].headers.at("id") == "00000000-0000-0000-0000-000000000003");
    CHECK(d.terminate() == 0);
}
