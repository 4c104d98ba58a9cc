// Typed payloads and poison rows on real PostgreSQL and Kafka: the seed's user events published
// as playball.auth.v1 messages and decoded with classes generated from the same .proto; a row
// whose payload is not its type dead-lettered in the middle of a stream, the rows around it
// delivered in order; the descriptor set reloaded on SIGHUP.

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <csignal>
#include <filesystem>

#include "outboxd/v1/event.pb.h"
#include "playball/auth/v1/user_events.pb.h"
#include "support.h"

using namespace itest;
using namespace std::chrono_literals;

namespace {

std::string typedConfig(const Database& db, const std::string& prefix, const std::string& set_path, int port) {
    return relayConfig(db, prefix, fmt::format(R"(payload:
  protobuf:
    descriptor_set: "{}"
    types:
      UserRegistered: playball.auth.v1.UserRegistered
      UserUpdated: playball.auth.v1.UserUpdated
      UserDeleted: playball.auth.v1.UserDeleted
invalid_rows:
  action: dead-letter
  dead_letter_topic: {}.dead-letter
)",
                                               set_path, prefix),
                       port);
}

void insertEvent(Pg& pg, int n, const std::string& type, const std::string& payload_json) {
    pg.exec(fmt::format("INSERT INTO outbox VALUES ('00000000-0000-0000-0000-{:012d}', 'user', '42', '{}', '{}')", n,
                        type, payload_json));
}

outboxd::v1::Event envelope(const Record& r) {
    outboxd::v1::Event e;
    REQUIRE(e.ParseFromString(r.value));
    return e;
}

}  // namespace

TEST_CASE("typed_payloads_and_a_dead_lettered_poison_row", "[integration]") {
    auto db = Database::create("typed_payloads");
    Pg pg(db.dsn);
    const auto set_path = Env::get().work_dir + "/typed_payloads.binpb";
    std::filesystem::copy_file(OUTBOXD_IT_PLAYBALL_SET_V1, set_path, std::filesystem::copy_options::overwrite_existing);
    const int port = freePort();
    Daemon d("typed_payloads", typedConfig(db, "typed", set_path, port));
    d.start();
    REQUIRE(eventually([&] { return httpGet(port, "/readyz").status == 200; }, 60s));

    // GIVEN a register, a poison update (id is not a number), an update, a delete
    insertEvent(pg, 1, "UserRegistered",
                R"({"id": 42, "username": "ada", "email": "ada@example.com", "displayName": "Ada L.",
                    "registeredAt": "2026-12-02T10:00:00Z"})");
    insertEvent(pg, 2, "UserUpdated", R"({"id": "forty-two"})");
    insertEvent(pg, 3, "UserUpdated", R"({"id": 42, "email": "ada@lovelace.org"})");
    insertEvent(pg, 4, "UserDeleted", R"({"id": 42})");

    // THEN the three good events arrive in order, typed
    KafkaReader reader({"typed.user"});
    auto records = reader.readUntil(3, 60s);
    REQUIRE(records.size() == 3);
    CHECK(records[0].headers.at("content-type") == "application/x-protobuf; messageType=playball.auth.v1.UserRegistered");
    CHECK(records[1].headers.at("content-type") == "application/x-protobuf; messageType=playball.auth.v1.UserUpdated");
    CHECK(records[2].headers.at("content-type") == "application/x-protobuf; messageType=playball.auth.v1.UserDeleted");
    CHECK(records[0].headers.at("id") == "00000000-0000-0000-0000-000000000001");
    CHECK(records[1].headers.at("id") == "00000000-0000-0000-0000-000000000003");
    CHECK(records[2].headers.at("id") == "00000000-0000-0000-0000-000000000004");

    playball::auth::v1::UserRegistered registered;
    const auto e0 = envelope(records[0]);
    CHECK(e0.content_type() == records[0].headers.at("content-type"));
    REQUIRE(registered.ParseFromString(e0.payload()));
    CHECK(registered.id() == 42);
    CHECK(registered.username() == "ada");
    CHECK(registered.email() == "ada@example.com");
    CHECK(registered.display_name() == "Ada L.");
    CHECK(registered.registered_at().seconds() == 1796205600);

    playball::auth::v1::UserUpdated updated;
    REQUIRE(updated.ParseFromString(envelope(records[1]).payload()));
    CHECK(updated.id() == 42);
    CHECK(updated.email() == "ada@lovelace.org");
    playball::auth::v1::UserDeleted deleted;
    REQUIRE(deleted.ParseFromString(envelope(records[2]).payload()));
    CHECK(deleted.id() == 42);

    // AND the poison row is in the dead-letter topic: its key, its bytes, what was wrong
    KafkaReader dead({"typed.dead-letter"});
    auto dl = dead.readUntil(1, 30s);
    REQUIRE(dl.size() == 1);
    CHECK(dl[0].key == std::optional<std::string>("42"));
    CHECK(dl[0].value == R"({"id": "forty-two"})");
    CHECK(dl[0].headers.at("id") == "00000000-0000-0000-0000-000000000002");
    CHECK(dl[0].headers.at("type") == "UserUpdated");
    CHECK(dl[0].headers.at("aggregate_type") == "user");
    CHECK(dl[0].headers.at("outboxd.table") == "public.outbox");
    CHECK_THAT(dl[0].headers.at("outboxd.error"), Catch::Contains("playball.auth.v1.UserUpdated"));
    CHECK_THAT(dl[0].headers.at("outboxd.error"), Catch::Contains("00000000-0000-0000-0000-000000000002"));
    CHECK(parseLsn(dl[0].headers.at("outboxd.lsn")) > 0);
    CHECK(dl[0].headers.count("content-type") == 0);
    const auto metrics = httpGet(port, "/metrics").body;
    CHECK(metricValue(metrics, R"(outboxd_events_dead_lettered_total{reason="payload_type"})") == 1.0);

    // AND everything, the dead-lettered row included, is confirmed to the slot
    const auto end = parseLsn(*pg.scalar("SELECT pg_current_wal_lsn()"));
    CHECK(eventually([&] { return confirmedFlush(pg, db.name) >= end; }, 30s));

    // WHEN a field the set does not know is written, it is dead-lettered (unknown_fields: fail) ...
    insertEvent(pg, 5, "UserUpdated", R"({"id": 42, "nickname": "countess"})");
    REQUIRE(dead.readUntil(1, 30s).size() == 1);

    // ... and once the newer set is in place and SIGHUP sent, the same payload is published
    std::filesystem::copy_file(OUTBOXD_IT_PLAYBALL_SET_V2, set_path, std::filesystem::copy_options::overwrite_existing);
    auto reloads = [&] {
        return metricValue(httpGet(port, "/metrics").body, R"(outboxd_payload_reloads_total{result="ok"})").value_or(0);
    };
    REQUIRE(eventually([&] { return reloads() >= 1.0; }, 30s));  // the file changed
    d.signal(SIGHUP);
    REQUIRE(eventually([&] { return reloads() >= 2.0; }, 30s));  // asked for
    insertEvent(pg, 6, "UserUpdated", R"({"id": 42, "nickname": "countess"})");
    auto after = reader.readUntil(1, 30s);
    REQUIRE(after.size() == 1);
    CHECK(after[0].headers.at("id") == "00000000-0000-0000-0000-000000000006");
    CHECK(d.running());
    CHECK(d.terminate() == 0);
}
