// Issue 8, the source side: durations, definite connection refusals, the slot record on the
// publication, the silence detector, and the router's checks at the edges (a renamed outbox
// table, a NULL where a topic or key needs a value).

#include <catch2/catch.hpp>

#include "cdc/publication_watch.h"
#include "cdc/source_checks.h"
#include "outbox/router.h"

using namespace outboxd;
using namespace std::chrono_literals;
using cdc::SilenceDetector;

TEST_CASE("wal_sender_timeout is read in every unit SHOW prints", "[source]") {
    using cdc::parseDurationSetting;
    CHECK(parseDurationSetting("60s") == 60'000ms);
    CHECK(parseDurationSetting("500ms") == 500ms);
    CHECK(parseDurationSetting("1min") == 60'000ms);
    CHECK(parseDurationSetting("1h") == 3'600'000ms);
    CHECK(parseDurationSetting("2d") == 172'800'000ms);
    CHECK(parseDurationSetting("0") == 0ms);
    CHECK(parseDurationSetting("1500") == 1500ms);
    CHECK_FALSE(parseDurationSetting("soon"));
    CHECK_FALSE(parseDurationSetting("5 fortnights"));
    CHECK_FALSE(parseDurationSetting(""));
}

TEST_CASE("permanent PostgreSQL refusals are definite, with the fix", "[source]") {
    struct Case {
        const char* message;
        ErrorKind kind;
        const char* fix;
    };
    auto c = GENERATE(
        Case{"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  must be superuser or replication role "
             "to start walsender",
             ErrorKind::SourcePermission, "WITH REPLICATION"},
        Case{"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  permission denied to start WAL "
             "sender\nDETAIL:  Only roles with the REPLICATION attribute may start a WAL sender process.",
             ErrorKind::SourcePermission, "WITH REPLICATION"},
        Case{"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nosuch\" does not exist",
             ErrorKind::SourceSetting, "dbname"},
        Case{"invalid sslmode value: \"sometimes\"", ErrorKind::SourceSetting, "sslmode"},
        Case{"invalid integer value \"five\" for connection option \"port\"", ErrorKind::SourceSetting, "port"},
        Case{"invalid port number: \"99999\"", ErrorKind::SourceSetting, "port"});
    auto failure = cdc::classifyConnectFailure(c.message);
    INFO(c.message);
    CHECK(failure.kind == c.kind);
    CHECK_FALSE(isRetriable(failure.kind));
    CHECK_THAT(failure.hint, Catch::Contains(c.fix));
}

TEST_CASE("a server that is down or starting is retried", "[source]") {
    for (const char* message :
         {"connection to server at \"127.0.0.1\", port 5432 failed: Connection refused\n\tIs the server running on "
          "that host and accepting TCP/IP connections?",
          "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is starting up",
          "could not translate host name \"db\" to address: Temporary failure in name resolution"}) {
        INFO(message);
        auto failure = cdc::classifyConnectFailure(message);
        CHECK(failure.kind == ErrorKind::SourceConnect);
        CHECK(isRetriable(failure.kind));
    }
}

TEST_CASE("the slot record on the publication is found, replaced and removed, other lines kept", "[source]") {
    auto lsn = *cdc::Lsn::parse("16/B374D848");
    std::string comment = cdc::withSlotRecord("", {"outboxd", lsn});
    CHECK(comment == "outboxd slot=outboxd confirmed_lsn=16/B374D848");
    auto found = cdc::findSlotRecord(comment, "outboxd");
    REQUIRE(found);
    CHECK(found->confirmed == lsn);
    CHECK_FALSE(cdc::findSlotRecord(comment, "outboxd_2"));
    CHECK_FALSE(cdc::findSlotRecord("outboxd slot=outboxd_2 confirmed_lsn=0/1", "outboxd"));

    std::string shared = cdc::withSlotRecord("owned by the auth team\n" + comment, {"other", cdc::Lsn{16}});
    shared = cdc::withSlotRecord(shared, {"outboxd", cdc::Lsn{0x20}});
    CHECK(shared == "owned by the auth team\noutboxd slot=outboxd confirmed_lsn=0/20\noutboxd slot=other "
                    "confirmed_lsn=0/10");
    CHECK(cdc::findSlotRecord(shared, "other")->confirmed == cdc::Lsn{16});
    CHECK(cdc::withoutSlotRecord(shared, "outboxd") == "owned by the auth team\noutboxd slot=other confirmed_lsn=0/10");
    CHECK(cdc::withoutSlotRecord(comment, "outboxd").empty());
}

TEST_CASE("a silent server is asked for a reply before it is presumed dead", "[source]") {
    auto t0 = SilenceDetector::Clock::now();
    SilenceDetector d(10s, t0);
    CHECK(d.check(t0 + 4s) == SilenceDetector::Verdict::Quiet);
    CHECK(d.check(t0 + 5s) == SilenceDetector::Verdict::AskForReply);
    CHECK(d.check(t0 + 5500ms) == SilenceDetector::Verdict::Quiet);
    CHECK(d.check(t0 + 6300ms) == SilenceDetector::Verdict::AskForReply);

    SECTION("a server busy decoding answers, and the session goes on as long as it answers") {
        d.heard(t0 + 7s);
        for (int i = 1; i <= 20; ++i) {
            auto now = t0 + 7s + i * 6s;
            CHECK(d.check(now) == SilenceDetector::Verdict::AskForReply);
            d.heard(now + 1s);
        }
    }
    SECTION("a server that answers no request is dead at the limit") {
        CHECK(d.check(t0 + 9999ms) != SilenceDetector::Verdict::Dead);
        CHECK(d.check(t0 + 10s) == SilenceDetector::Verdict::Dead);
    }
    SECTION("time blocked on a full producer queue is not silence") {
        for (int i = 1; i <= 30; ++i) d.notReading(t0 + i * 1s);
        CHECK(d.check(t0 + 31s) == SilenceDetector::Verdict::Quiet);
        CHECK(d.check(t0 + 40s) == SilenceDetector::Verdict::Dead);
    }
}

TEST_CASE("wal_sender_timeout = 0 disables the detector", "[source]") {
    auto t0 = SilenceDetector::Clock::now();
    SilenceDetector d(0ms, t0);
    CHECK(d.check(t0 + 24h) == SilenceDetector::Verdict::Quiet);
}

namespace {

using cdc::pgoutput::Column;
using cdc::pgoutput::Insert;
using cdc::pgoutput::Relation;
using cdc::pgoutput::RelationId;
using cdc::pgoutput::Value;
using cdc::pgoutput::ValueKind;

config::Template tmpl(std::vector<config::Template::Part> parts, std::string source) {
    config::Template t;
    t.source = std::move(source);
    t.parts = std::move(parts);
    return t;
}

config::Config edgeConfig() {
    config::Config c;
    c.routing.topic = tmpl({{false, "outbox.event."}, {true, "aggregatetype"}}, "outbox.event.{aggregatetype}");
    c.routing.key = tmpl({{true, "aggregateid"}}, "{aggregateid}");
    return c;
}

Relation relation(std::string schema = "public", std::string name = "outbox") {
    Relation r;
    r.id = RelationId{16384};
    r.schema = std::move(schema);
    r.name = std::move(name);
    r.columns = {Column{1, "id", 2950, -1}, Column{0, "aggregatetype", 25, -1}, Column{0, "aggregateid", 25, -1},
                 Column{0, "type", 25, -1}, Column{0, "payload", outbox::oid::kJsonb, -1}};
    return r;
}

Insert row() {
    Insert ins;
    ins.relation = RelationId{16384};
    ins.new_tuple = {Value{ValueKind::Text, "5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"}, Value{ValueKind::Text, "user"},
                     Value{ValueKind::Text, "42"}, Value{ValueKind::Text, "UserRegistered"},
                     Value{ValueKind::Text, "{}"}};
    return ins;
}

outbox::ChangeContext ctx() {
    outbox::ChangeContext c;
    c.lsn = cdc::Lsn{0x1000};
    c.xid = cdc::Xid{777};
    return c;
}

}  // namespace

TEST_CASE("an outbox table renamed or moved while streaming is an error, not a table to skip", "[source][router]") {
    auto config = edgeConfig();
    outbox::Router router(config);
    REQUIRE(router.onRelation(relation()));
    auto moved = GENERATE(std::pair<std::string, std::string>{"public", "outbox_old"},
                          std::pair<std::string, std::string>{"archive", "outbox"});
    auto r = router.onRelation(relation(moved.first, moved.second));
    REQUIRE_FALSE(r);
    CHECK_FALSE(isRetriable(r.error().kind));
    CHECK_THAT(r.error().message, Catch::Contains("public.outbox") &&
                                      Catch::Contains(moved.first + "." + moved.second) &&
                                      Catch::Contains("source.outbox.tables"));
}

TEST_CASE("another table's Relation message is not an outbox table and no error", "[source][router]") {
    auto config = edgeConfig();
    outbox::Router router(config);
    auto other = relation("public", "users");
    other.id = RelationId{20000};
    auto r = router.onRelation(other);
    REQUIRE(r);
    CHECK_FALSE(*r);
}

TEST_CASE("a NULL where the topic or key needs a value names the column and the event id", "[source][router]") {
    auto config = edgeConfig();
    outbox::OutboxEvent ev;
    SECTION("topic") {
        outbox::Router router(config);
        REQUIRE(router.onRelation(relation()));
        auto ins = row();
        ins.new_tuple[1] = Value{ValueKind::Null, {}};
        auto r = router.route(ins, ctx(), ev);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::InvalidRow);
        CHECK_THAT(r.error().message, Catch::Contains("0/1000") && Catch::Contains("'aggregatetype'") &&
                                          Catch::Contains("5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70"));
    }
    SECTION("a key made of a column and text") {
        config.routing.key = tmpl({{false, "user-"}, {true, "aggregateid"}}, "user-{aggregateid}");
        outbox::Router router(config);
        REQUIRE(router.onRelation(relation()));
        auto ins = row();
        ins.new_tuple[2] = Value{ValueKind::Null, {}};
        auto r = router.route(ins, ctx(), ev);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("0/1000") && Catch::Contains("'aggregateid'") &&
                                          Catch::Contains("5b1a0c4e-9f51-4c3b-8a3e-0b7c2d1e6f70") &&
                                          Catch::Contains("routing.key"));
    }
    SECTION("a key that is one column is a null record key") {
        outbox::Router router(config);
        REQUIRE(router.onRelation(relation()));
        auto ins = row();
        ins.new_tuple[2] = Value{ValueKind::Null, {}};
        REQUIRE(router.route(ins, ctx(), ev));
        CHECK(ev.key_is_null);
    }
}

TEST_CASE("a publication narrowed while streaming is judged before anything past it is confirmed", "[source]") {
    using cdc::judgePublication;
    using cdc::PublicationRow;
    const std::vector<config::TableName> tables{{"public", "outbox"}, {"app", "Outbox"}};
    const cdc::Lsn at{0x16B3748};
    const std::vector<PublicationRow> both{{true, "public", "outbox"}, {true, "app", "Outbox"}, {true, "x", "other"}};
    CHECK_FALSE(judgePublication(both, "pub", tables, at).has_value());

    // a table dropped from the publication: named (quoted as SQL needs), with the fix and the LSN
    auto dropped = judgePublication({{true, "public", "outbox"}}, "pub", tables, at);
    REQUIRE(dropped.has_value());
    CHECK(dropped->kind == ErrorKind::PublicationMissing);
    CHECK_THAT(dropped->message, Catch::Contains("outbox table app.\"Outbox\" was removed from publication 'pub'") &&
                                     Catch::Contains("after 0/16B3748") &&
                                     Catch::Contains("ALTER PUBLICATION pub ADD TABLE app.\"Outbox\""));
    CHECK(dropped->lsn == "0/16B3748");

    // inserts no longer published
    std::vector<PublicationRow> no_inserts = both;
    for (auto& r : no_inserts) r.pubinsert = false;
    auto narrowed = judgePublication(no_inserts, "pub", tables, at);
    REQUIRE(narrowed.has_value());
    CHECK_THAT(narrowed->message, Catch::Contains("stopped publishing inserts") &&
                                      Catch::Contains("SET (publish = 'insert')"));

    // the publication dropped; and a publication left without tables (the LEFT JOIN's NULLs)
    auto gone = judgePublication({}, "pub", tables, cdc::Lsn{});
    REQUIRE(gone.has_value());
    CHECK_THAT(gone->message, Catch::Contains("was dropped") && Catch::Contains("since outboxd started"));
    auto empty = judgePublication({{true, std::nullopt, std::nullopt}}, "pub", tables, at);
    REQUIRE(empty.has_value());
    CHECK_THAT(empty->message, Catch::Contains("public.outbox, app.\"Outbox\""));
}

TEST_CASE("a reconnect must find the same database cluster", "[source]") {
    CHECK_FALSE(cdc::checkSameSystem("", "7350000000000000001").has_value());  // first session
    CHECK_FALSE(cdc::checkSameSystem("7350000000000000001", "7350000000000000001").has_value());
    const auto other = cdc::checkSameSystem("7350000000000000001", "7350000000000000002");
    REQUIRE(other.has_value());
    CHECK_THAT(*other, Catch::Contains("another database cluster") && Catch::Contains("7350000000000000002") &&
                           Catch::Contains("7350000000000000001") && Catch::Contains("source.postgres.dsn"));
}

TEST_CASE("after a promotion the slot must be the synchronized one, not ahead of outboxd", "[source]") {
    const auto at = [](const char* text) { return *cdc::Lsn::parse(text); };
    cdc::PromotedSlot synced{true, true, true, at("0/3000000")};
    const cdc::Lsn confirmed = at("0/3000100");

    // no promotion: the first session, or the same timeline (a restart of the same primary)
    CHECK_FALSE(cdc::checkPromotedSlot("s", 0, 2, cdc::PromotedSlot{}, confirmed).has_value());
    CHECK_FALSE(cdc::checkPromotedSlot("s", 1, 1, cdc::PromotedSlot{}, confirmed).has_value());
    // the synchronized slot, at or behind what outboxd confirmed: resume from it
    CHECK_FALSE(cdc::checkPromotedSlot("s", 1, 2, synced, confirmed).has_value());
    CHECK_FALSE(cdc::checkPromotedSlot("s", 1, 2, synced, at("0/3000000")).has_value());

    SECTION("no slot: it was never synchronized") {
        const auto r = cdc::checkPromotedSlot("outboxd", 1, 2, cdc::PromotedSlot{}, confirmed);
        REQUIRE(r.has_value());
        CHECK_THAT(*r, Catch::StartsWith(std::string(cdc::kPromotionRefusal)) && Catch::Contains("timeline 2") &&
                           Catch::Contains("no replication slot 'outboxd'") &&
                           Catch::Contains("not synchronized to this standby before the promotion") &&
                           Catch::Contains("0/3000100") && Catch::Contains("--accept-slot-loss") &&
                           Catch::Contains("sync_replication_slots"));
    }
    SECTION("a slot not synchronized from the old primary") {
        auto by_hand = synced;
        by_hand.synced = false;
        const auto r = cdc::checkPromotedSlot("outboxd", 1, 2, by_hand, confirmed);
        REQUIRE(r.has_value());
        CHECK_THAT(*r, Catch::Contains("is not the one synchronized") && Catch::Contains("synced = false"));
        auto no_failover = synced;
        no_failover.failover = false;
        CHECK(cdc::checkPromotedSlot("outboxd", 1, 2, no_failover, confirmed).has_value());
        auto unknown = synced;
        unknown.synced.reset();
        CHECK(cdc::checkPromotedSlot("outboxd", 1, 3, unknown, confirmed).has_value());
    }
    SECTION("a synchronized slot ahead of what outboxd confirmed") {
        auto ahead = synced;
        ahead.confirmed_flush = at("0/3000200");
        const auto r = cdc::checkPromotedSlot("outboxd", 1, 2, ahead, confirmed);
        REQUIRE(r.has_value());
        CHECK_THAT(*r, Catch::Contains("0/3000200, ahead of the last LSN this outboxd confirmed (0/3000100)"));
    }
}
