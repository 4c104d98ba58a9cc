// routing.tombstone_on_empty_payload on a compacted topic (issue 9): the tombstone outboxd sends
// for a NULL payload makes the broker's log cleaner forget the aggregate, while the latest record
// of every other key stays. Without the option the NULL payload is an envelope like any other
// event, and compaction keeps it as the aggregate's latest record.
//
// The topic is made so that Kafka 4's cleaner works within seconds: one partition, a segment
// rolled after a second (segment.bytes cannot go below 1 MiB), any dirty share cleanable, no
// compaction lag, tombstones kept 100 ms. The cleaner looks for work every log.cleaner.backoff.ms
// (the broker's default 15 s), so the wait is bounded at 50 s. A segment is only cleaned once it is
// no longer the active one, and Kafka rolls one only when a record arrives: the scenario writes a
// filler event every 1.5 s while it waits.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

// Creates `topic`, compacted, with one partition and the settings above.
void createCompactedTopic(const std::string& topic) {
    createTopics({{.name = topic,
                   .config = {{"cleanup.policy", "compact"},
                              {"segment.ms", "1000"},
                              {"min.cleanable.dirty.ratio", "0.01"},
                              {"min.compaction.lag.ms", "0"},
                              {"delete.retention.ms", "100"}}}},
                 /*must_be_new=*/true);
}

std::string rowId(int n) { return fmt::format("00000000-0000-0000-0000-{:012d}", n); }

std::vector<Record> ofKey(const std::vector<Record>& records, const std::string& key) {
    std::vector<Record> out;
    for (const auto& r : records) {
        if (r.key == std::optional<std::string>(key)) out.push_back(r);
    }
    return out;
}

// What a reader from the beginning finds once the cleaner has gone over B's events (B's earlier
// records gone); a filler event is written before each look, to roll the segment.
struct Compacted {
    std::vector<Record> records;
    bool cleaned = false;
    int fillers = 0;
};

Compacted waitForCompaction(Pg& pg, const std::string& topic) {
    Compacted out;
    const auto until = std::chrono::steady_clock::now() + 50s;
    while (std::chrono::steady_clock::now() < until) {
        ++out.fillers;
        const auto filler_id = rowId(1000 + out.fillers);
        pg.exec(fmt::format("INSERT INTO outbox VALUES ('{}', 'item', 'filler', 'Filled', '{{}}')", filler_id));
        // The filler read back proves the reader went to the end of the log.
        KafkaReader reader({topic});
        std::vector<Record> records;
        const bool filler_seen = eventually(
            [&] {
                for (auto& r : reader.readUntil(static_cast<std::size_t>(-1), 200ms)) records.push_back(std::move(r));
                return std::ranges::any_of(records, [&](const Record& r) {
                    return r.headers.contains("id") && r.headers.at("id") == filler_id;
                });
            },
            20s);
        REQUIRE(filler_seen);
        out.records = std::move(records);
        if (ofKey(out.records, "B").size() == 1) {
            out.cleaned = true;
            return out;
        }
        struct timespec ts{1, 500'000'000};
        nanosleep(&ts, nullptr);
    }
    return out;
}

// The events of both scenarios: three for A and three for B in one transaction, then A's NULL
// payload in another; returns what the relay sent, read as it arrived (before any cleaning).
std::vector<Record> writeEvents(Pg& pg, const std::string& topic) {
    KafkaReader reader({topic});
    pg.exec(fmt::format(R"(BEGIN;
        INSERT INTO outbox VALUES ('{}', 'item', 'A', 'Created', '{{"seq": 1}}');
        INSERT INTO outbox VALUES ('{}', 'item', 'B', 'Created', '{{"seq": 2}}');
        INSERT INTO outbox VALUES ('{}', 'item', 'A', 'Renamed', '{{"seq": 3}}');
        INSERT INTO outbox VALUES ('{}', 'item', 'B', 'Renamed', '{{"seq": 4}}');
        INSERT INTO outbox VALUES ('{}', 'item', 'A', 'Renamed', '{{"seq": 5}}');
        INSERT INTO outbox VALUES ('{}', 'item', 'B', 'Renamed', '{{"seq": 6}}');
        COMMIT)",
                        rowId(1), rowId(2), rowId(3), rowId(4), rowId(5), rowId(6)));
    pg.exec(fmt::format("INSERT INTO outbox VALUES ('{}', 'item', 'A', 'Deleted', NULL)", rowId(7)));
    return reader.readUntil(7, 60s);
}

}  // namespace

TEST_CASE("tombstone_lets_a_compacted_topic_forget_the_aggregate", "[integration]") {
    // GIVEN a compacted topic made beforehand and a relay with routing.tombstone_on_empty_payload
    const std::string prefix = fmt::format("compact_on_{}", getpid());
    const std::string topic = prefix + ".item";
    createCompactedTopic(topic);
    auto db = Database::create("compact_on");
    Pg pg(db.dsn);
    const int port = freePort();
    Daemon d("compact_on", withLinesAfter(relayConfig(db, prefix, "", port), "  topic:",
                                          "  tombstone_on_empty_payload: true\n"));
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN A and B have events and A's last row has a NULL payload
    auto sent = writeEvents(pg, topic);

    // THEN the relay sent A's NULL payload as a tombstone: a null value, A's key, its headers
    REQUIRE(sent.size() == 7);
    for (int i = 0; i < 6; ++i) CHECK_FALSE(sent[i].value_is_null);
    CHECK(sent[6].value_is_null);
    CHECK(sent[6].key == std::optional<std::string>("A"));
    CHECK(sent[6].headers.at("id") == rowId(7));
    CHECK(sent[6].headers.at("type") == "Deleted");
    CHECK(sent[6].headers.at("aggregate_type") == "item");

    // AND once the cleaner has been over the log, nothing of A is left but (for
    // delete.retention.ms) the tombstone, while B's latest event is still there
    auto compacted = waitForCompaction(pg, topic);
    INFO("fillers written: " << compacted.fillers << ", records read: " << compacted.records.size());
    REQUIRE(compacted.cleaned);
    const auto a = ofKey(compacted.records, "A");
    CHECK(a.size() <= 1);
    for (const auto& r : a) {
        CHECK(r.value_is_null);
        CHECK(r.headers.at("id") == rowId(7));
    }
    const auto b = ofKey(compacted.records, "B");
    REQUIRE(b.size() == 1);
    CHECK(b[0].headers.at("id") == rowId(6));
    CHECK_FALSE(b[0].value_is_null);
    CHECK(d.terminate() == 0);
}

TEST_CASE("without_tombstones_compaction_keeps_the_aggregates_last_event", "[integration]") {
    // GIVEN the same compacted topic and a relay without tombstone_on_empty_payload
    const std::string prefix = fmt::format("compact_off_{}", getpid());
    const std::string topic = prefix + ".item";
    createCompactedTopic(topic);
    auto db = Database::create("compact_off");
    Pg pg(db.dsn);
    const int port = freePort();
    Daemon d("compact_off", relayConfig(db, prefix, "", port));
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN the same events are written
    auto sent = writeEvents(pg, topic);

    // THEN A's NULL payload is an envelope (a value), and after cleaning it is A's record left
    REQUIRE(sent.size() == 7);
    CHECK_FALSE(sent[6].value_is_null);
    auto compacted = waitForCompaction(pg, topic);
    INFO("fillers written: " << compacted.fillers << ", records read: " << compacted.records.size());
    REQUIRE(compacted.cleaned);
    const auto a = ofKey(compacted.records, "A");
    REQUIRE(a.size() == 1);
    CHECK_FALSE(a[0].value_is_null);
    CHECK(a[0].headers.at("id") == rowId(7));
    const auto b = ofKey(compacted.records, "B");
    REQUIRE(b.size() == 1);
    CHECK(b[0].headers.at("id") == rowId(6));
    CHECK(d.terminate() == 0);
}
