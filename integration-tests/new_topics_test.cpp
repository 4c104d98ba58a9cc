// Events to many topics the broker creates on first use (auto.create.topics.enable), written as a
// steady stream of small transactions while the topics appear: every event must arrive on its topic
// (at least once: when the relay sends again from its last confirmed LSN, some arrive twice). The
// reader that follows the stream is checked against a second reader made after every topic exists,
// so a record the first one missed is told apart from one never written.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

constexpr int kTopics = 40;
constexpr int kPerTopic = 15;
constexpr int kEvents = kTopics * kPerTopic;

std::string idOf(int seq) { return fmt::format("00000000-0000-0000-0000-{:012d}", seq); }
// Each topic gets its events in a run of kPerTopic, so new topics keep appearing while earlier
// ones still get events (every third event goes to the topic before).
int topicOf(int seq) {
    const int t = seq / kPerTopic;
    return (seq % 3 == 0 && t > 0) ? t - 1 : t;
}

// seq -> topics it was read from (one entry per record)
std::map<int, std::vector<std::string>> collect(const std::vector<Record>& records) {
    std::map<int, std::vector<std::string>> seen;
    for (const auto& r : records) {
        const auto it = r.headers.find("id");
        if (it == r.headers.end()) continue;
        seen[std::stoi(it->second.substr(24))].push_back(r.topic);
    }
    return seen;
}

std::string problems(const std::map<int, std::vector<std::string>>& seen, const std::string& prefix) {
    std::string out;
    for (int seq = 0; seq < kEvents; ++seq) {
        const std::string want = fmt::format("{}.t{}", prefix, topicOf(seq));
        const auto it = seen.find(seq);
        if (it == seen.end()) {
            out += fmt::format("seq {} missing (topic {}); ", seq, want);
        } else {
            for (const auto& topic : it->second) {
                if (topic != want) out += fmt::format("seq {} read on {} (want {}); ", seq, topic, want);
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE("events_to_many_auto_created_topics_all_arrive", "[integration]") {
    // GIVEN a relay whose topics do not exist yet (the broker creates them on first use), with
    // librdkafka's debug on so a missing record can be followed in the log
    const std::string prefix = fmt::format("it_newtopics_{}", std::time(nullptr));
    auto db = Database::create("new_topics");
    Pg pg(db.dsn);
    const int port = freePort();
    std::string yaml = relayConfig(db, prefix, "", port);
    yaml = withLinesAfter(yaml, "    shutdown_timeout_ms",
                          "    properties:\n      debug: \"msg,eos,topic,metadata\"\n");
    Daemon d("new_topics", yaml);
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));
    std::vector<std::string> topics;
    for (int t = 0; t < kTopics; ++t) topics.push_back(fmt::format("{}.t{}", prefix, t));
    // The reader follows the stream from before the topics exist (on a thread of its own), as the
    // failover scenario's did.
    std::vector<Record> followed;
    std::thread follow([&] {
        KafkaReader follower(topics);
        followed = follower.readUntil(kEvents, 300s);
        for (auto& r : follower.drain(3s)) followed.push_back(std::move(r));
    });

    // WHEN events are written in small transactions (3 rows each), the topics appearing as they go
    for (int seq = 0; seq < kEvents; seq += 3) {
        std::string sql = "BEGIN;";
        for (int s = seq; s < seq + 3 && s < kEvents; ++s) {
            sql += fmt::format("INSERT INTO outbox VALUES ('{}', 't{}', '{}', 'Happened', '{{\"seq\": {}}}');",
                               idOf(s), topicOf(s), s, s);
        }
        sql += "COMMIT;";
        pg.exec(sql);
        std::this_thread::sleep_for(5ms);
    }

    // THEN the follower reads every event on its topic (and on no other)
    follow.join();
    const auto by_follower = problems(collect(followed), prefix);
    // AND so does a reader made after every topic exists (reading each partition from offset 0)
    KafkaReader late(topics);
    auto all = late.readUntil(kEvents, 180s);
    for (auto& r : late.drain(3s)) all.push_back(std::move(r));
    const auto seen_late = collect(all);
    const auto by_late = problems(seen_late, prefix);
    if (!by_follower.empty() || !by_late.empty()) {
        std::ofstream(fmt::format("/tmp/{}.log", prefix)) << d.log();
    }
    std::size_t twice = 0;
    for (const auto& [seq, on] : seen_late) twice += on.size() > 1 ? 1 : 0;
    // A partition's first batch acknowledged only by the next one (not in the log) is sent again.
    const bool resent = d.log().find("delivered without an offset") != std::string::npos;
    INFO("outboxd's log: /tmp/" << prefix << ".log");
    // Said as a warning (shown even when the scenario passes): how often the resend happened.
    if (twice > 0 || resent) {
        WARN("events read more than once: " << twice
                                            << (resent ? " (the relay sent again after an acknowledgement without an "
                                                         "offset)"
                                                       : ""));
    }
    INFO("late reader: " << all.size() << " records; " << by_late);
    INFO("follower: " << followed.size() << " records; " << by_follower);
    CHECK(by_late.empty());
    CHECK(by_follower.empty());
    CHECK(d.terminate() == 0);
}
