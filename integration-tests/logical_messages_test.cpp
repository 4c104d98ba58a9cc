// The table-less outbox on a real PostgreSQL and Kafka: transactional logical messages
// (pg_logical_emit_message) with a listed prefix are events, in commit order with the rows of
// the same transactions, through SIGKILLs of the relay; a non-transactional one is refused.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "outboxd/v1/event.pb.h"
#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

std::string withMessages(const std::string& config, const std::string& block) {
    return withLinesAfter(config, "    publication: ", "  outbox:\n    messages:\n" + block);
}

// Transaction n: an outbox row (id ...0n1) and a logical message (id ...0n2), in that order.
void writeTransaction(Pg& pg, int n) {
    pg.exec(fmt::format(
        "BEGIN; "
        "INSERT INTO outbox VALUES ('00000000-0000-0000-0000-{:011d}1', 'user', '{}', 'Row', '{{\"n\": {}}}'); "
        "SELECT pg_logical_emit_message(true, 'outbox', '{{\"id\": \"00000000-0000-0000-0000-{:011d}2\", "
        "\"aggregatetype\": \"user\", \"aggregateid\": \"{}\", \"type\": \"Message\", \"payload\": {{\"n\": {}}}}}'); "
        "SELECT pg_logical_emit_message(true, 'elsewhere', 'not an event'); "
        "COMMIT",
        n, n % 7, n, n, n % 7, n));
}

}  // namespace

TEST_CASE("logical_message_events_survive_sigkills_in_commit_order", "[integration]") {
    // GIVEN a relay that takes messages with prefix 'outbox' as events
    auto db = Database::create("it_messages");
    Pg pg(db.dsn);
    const int port = freePort();
    Daemon daemon("it_messages", withMessages(relayConfig(db, "it_messages", "", port), "      prefixes: [outbox]\n"));
    daemon.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // WHEN 400 transactions each write a row and a message while the relay is SIGKILLed 3 times
    constexpr int kTransactions = 400;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        Pg wpg(db.dsn);
        for (int n = 0; n < kTransactions; ++n) {
            writeTransaction(wpg, n);
            std::this_thread::sleep_for(10ms);
        }
        done = true;
    });
    int kills = 0;
    for (; kills < 3 && !done; ++kills) {
        const auto started_at = confirmedFlush(pg, db.name);
        eventually([&] { return confirmedFlush(pg, db.name) > started_at; }, 30s);
        std::this_thread::sleep_for(300ms);
        daemon.kill9();
        std::this_thread::sleep_for(100ms);
        daemon.start();
    }
    writer.join();
    CHECK(kills >= 1);

    // THEN every row and every message is in Kafka, and per key each transaction's row comes
    // before its message and transactions in commit order (duplicates from the kills allowed)
    KafkaReader reader({"it_messages.user"});
    std::set<std::string> ids;
    std::map<std::string, std::vector<std::string>> per_key;
    eventually(
        [&] {
            for (auto& r : reader.readUntil(static_cast<std::size_t>(-1), 1s)) {
                outboxd::v1::Event e;
                REQUIRE(e.ParseFromString(r.value));
                ids.insert(e.id());
                per_key[*r.key].push_back(e.id());
                if (e.type() == "Message") {
                    CHECK(e.source().schema() == "pg_logical_emit_message");
                    CHECK(e.source().table() == "outbox");
                    CHECK(e.content_type() == "application/json");
                    CHECK(e.payload() == fmt::format("{{\"n\": {}}}", std::stoi(e.id().substr(24, 11))));
                }
            }
            return ids.size() == 2 * kTransactions;
        },
        120s);
    CHECK(ids.size() == 2 * kTransactions);
    for (const auto& [key, seq] : per_key) {
        // first-seen order of ids under this key is ascending (a re-sent run repeats a suffix)
        std::vector<std::string> first_seen;
        std::set<std::string> seen;
        for (const auto& id : seq) {
            if (seen.insert(id).second) first_seen.push_back(id);
        }
        CHECK(std::is_sorted(first_seen.begin(), first_seen.end()));
    }
    const auto end = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()"));
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= end; }, 60s));
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("non_transactional_logical_message_event_is_refused", "[integration]") {
    // GIVEN a relay that takes messages with prefix 'outbox' as events (non_transactional: refuse)
    auto db = Database::create("it_nontx");
    Pg pg(db.dsn);
    const int port = freePort();
    Daemon daemon("it_nontx", withMessages(relayConfig(db, "it_nontx", "", port), "      prefixes: [outbox]\n"));
    daemon.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));
    // WHEN a non-transactional message with that prefix is emitted
    pg.exec(R"(SELECT pg_logical_emit_message(false, 'outbox', '{"id": "1", "aggregatetype": "user",
               "aggregateid": "1", "type": "T", "payload": {}}'))");
    // THEN outboxd exits 1 saying why and what to do
    const auto code = daemon.waitExit(60s);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("non-transactional logical message with prefix 'outbox'") &&
                                 Catch::Contains("non_transactional: accept"));
}
