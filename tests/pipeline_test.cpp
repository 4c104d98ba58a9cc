// The relay's processing without I/O: golden pgoutput bytes from PostgreSQL 15 wrapped in
// XLogData frames, a memory sink with fault injection, and the real router and checkpointer.
#include <catch2/catch.hpp>

#include "app/pipeline.h"
#include "outboxd/v1/event.pb.h"
#include "support/memory_sink.h"
#include "test_bytes.h"

using namespace outboxd;
using namespace std::chrono_literals;
using test::Builder;
using test::Bytes;
using test::golden;

namespace {

// 'w' XLogData: walStart, walEnd, sendTime, data (protocol-replication.html, XLogData).
Bytes xlog(std::uint64_t start, const Bytes& data, std::uint64_t end = 0) {
    Builder b;
    b.ch('w').u64(start).u64(end == 0 ? start : end).i64(0);
    Bytes out = b.bytes();
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// 'k' Primary keepalive: walEnd, sendTime, reply requested.
Bytes keepalive(std::uint64_t wal_end, bool reply = false) {
    Builder b;
    b.ch('k').u64(wal_end).i64(0).u8(reply ? 1 : 0);
    return b.bytes();
}

config::Config outboxConfig() {
    config::Config c;
    c.routing.topic = *config::parseTemplate("outbox.event.{aggregatetype}");
    c.routing.key = *config::parseTemplate("{aggregateid}");
    return c;
}

struct Fixture {
    config::Config config = outboxConfig();
    test::MemorySink sink;
    metrics::Metrics metrics;
    app::Pipeline pipeline{config, sink, metrics, 1, cdc::Lsn{0x100}};

    void feed(const Bytes& frame) {
        auto ok = pipeline.handleFrame(frame);
        INFO((ok ? std::string() : ok.error().message));
        REQUIRE(ok);
    }
    void serve() { REQUIRE(pipeline.serveDeliveries(0ms)); }
    std::string metricsText() const { return metrics.render(); }
};

std::uint64_t commitEnd() {
    // Commit: 'C', flags, commit LSN, end LSN, time.
    auto bytes = golden("v1-commit");
    std::uint64_t end = 0;
    for (int i = 10; i < 18; ++i) end = (end << 8) | std::to_integer<std::uint64_t>(bytes[static_cast<std::size_t>(i)]);
    return end;
}

// The first captured transaction: two outbox rows (one with a NULL payload).
void feedFirstTransaction(Fixture& f) {
    f.feed(xlog(0x1000, golden("v1-begin")));
    f.feed(xlog(0, golden("v1-relation-outbox")));
    f.feed(xlog(0x1010, golden("v1-insert")));
    f.feed(xlog(0x1020, golden("v1-insert-null")));
    f.feed(xlog(commitEnd(), golden("v1-commit")));
}

}  // namespace

TEST_CASE("a captured transaction becomes events, confirmed only after Kafka acknowledges all", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    REQUIRE(f.sink.produced.size() == 2);
    const auto& first = f.sink.produced[0].event;
    CHECK(first.topic == "outbox.event.order");
    CHECK(first.key == "42");
    CHECK(first.id == "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    CHECK(first.type == "OrderCreated");
    CHECK(first.content_type == "application/json");
    outboxd::v1::Event ev;
    REQUIRE(ev.ParseFromString(first.value));
    CHECK(ev.payload() == R"({"items": [1, 2], "total": 12.5})");
    CHECK(ev.source().lsn() == 0x1010);
    CHECK(ev.source().xid() == test::manifestXid("v1-begin"));
    CHECK(ev.source().table() == "outbox");
    outboxd::v1::Event second;
    REQUIRE(second.ParseFromString(f.sink.produced[1].event.value));
    CHECK(second.payload().empty());

    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ack(1);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ack(0);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
    CHECK_THAT(f.metricsText(), Catch::Contains("outboxd_events_published_total 2"));
}

TEST_CASE("a Relation's XLogData LSN of 0 never moves a position backwards", "[pipeline]") {
    Fixture f;
    f.feed(keepalive(0x5000));
    CHECK(f.pipeline.serverWalEnd() == cdc::Lsn{0x5000});
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x5000});
    f.feed(xlog(0x6000, golden("v1-begin")));
    f.feed(xlog(0, golden("v1-relation-outbox")));
    CHECK(f.pipeline.serverWalEnd() == cdc::Lsn{0x6000});
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x5000});
}

TEST_CASE("keepalive positions are confirmed only when nothing is open or in flight", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    f.feed(keepalive(commitEnd() + 0x100, true));
    CHECK(f.pipeline.takeReplyRequest());
    CHECK_FALSE(f.pipeline.takeReplyRequest());
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ackAll();
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
    f.feed(keepalive(commitEnd() + 0x100));
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd() + 0x100});
}

TEST_CASE("a full sink holds the record and blocks reading until it is queued", "[pipeline]") {
    Fixture f;
    f.sink.capacity = 1;
    f.feed(xlog(0x1000, golden("v1-begin")));
    f.feed(xlog(0, golden("v1-relation-outbox")));
    f.feed(xlog(0x1010, golden("v1-insert")));
    CHECK_FALSE(f.pipeline.blocked());
    f.feed(xlog(0x1020, golden("v1-insert-null")));
    CHECK(f.pipeline.blocked());
    REQUIRE(f.pipeline.retryHeld());
    CHECK(f.pipeline.blocked());
    CHECK(f.sink.produced.size() == 1);
    f.sink.ack(0);
    f.serve();
    REQUIRE(f.pipeline.retryHeld());
    CHECK_FALSE(f.pipeline.blocked());
    REQUIRE(f.sink.produced.size() == 2);
    CHECK(f.sink.produced[1].event.id == "3f2504e0-4f89-11d3-9a0c-0305e82c3302");
    f.feed(xlog(commitEnd(), golden("v1-commit")));
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ack(1);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
}

TEST_CASE("a failed delivery ends the session without confirming", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    f.sink.ack(0);
    f.sink.ack(1, false, "Local: Message timed out");
    auto r = f.pipeline.serveDeliveries(0ms);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::SinkDelivery);
    CHECK(isRetriable(r.error().kind));
    CHECK_THAT(r.error().message, Catch::Contains("timed out"));
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    CHECK_THAT(f.metricsText(), Catch::Contains(R"(outboxd_events_failed_total{reason="delivery"} 1)"));
}

TEST_CASE("a record Kafka refuses for good stops the relay instead of resending it forever", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    f.sink.ack(0, false, "Broker: Message size too large", true);
    auto r = f.pipeline.serveDeliveries(0ms);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::SinkRejected);
    CHECK_FALSE(isRetriable(r.error().kind));
    CHECK_THAT(r.error().message, Catch::Contains("too large") && Catch::Contains("max.message.bytes"));
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
}

TEST_CASE("with dead-letter, a record Kafka refuses at delivery is dead-lettered and confirmed once that is acked",
          "[pipeline]") {
    Fixture f;
    f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
    f.config.invalid_rows.dead_letter_topic = "dlq";
    feedFirstTransaction(f);
    f.sink.ack(0, false, "Broker: Topic authorization failed", true, "topic_refused");
    f.sink.ack(1);
    f.serve();
    REQUIRE(f.sink.produced.size() == 3);
    const auto& dead = f.sink.produced[2].event;
    CHECK(dead.topic == "dlq");
    CHECK(dead.id == f.sink.produced[0].event.id);
    outboxd::v1::Event original;
    REQUIRE(original.ParseFromString(f.sink.produced[0].event.value));
    CHECK(dead.value == original.payload());
    REQUIRE(dead.extra_headers.size() == 3);
    CHECK(dead.extra_headers[0].first == "outboxd.error");
    CHECK_THAT(dead.extra_headers[0].second, Catch::Contains("authorization") && Catch::Contains(dead.id));
    CHECK(dead.extra_headers[2].second == "public.outbox");
    CHECK_THAT(f.metricsText(), Catch::Contains(R"(outboxd_events_dead_lettered_total{reason="topic_refused"} 1)"));
    // the transaction is held until the dead-letter record is acknowledged
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ack(2);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
}

namespace {
std::string headerOf(const outbox::OutboxEvent& e, std::string_view name) {
    for (const auto& [n, v] : e.extra_headers) {
        if (n == name) return v;
    }
    return "<absent>";
}
}  // namespace

TEST_CASE("a dead-letter record Kafka refuses at delivery as too large goes again without its payload",
          "[pipeline]") {
    Fixture f;
    f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
    f.config.invalid_rows.dead_letter_topic = "dlq";
    feedFirstTransaction(f);
    f.sink.ack(0, false, "Broker: Message size too large", true, "too_large");
    f.sink.ack(1);
    f.serve();
    REQUIRE(f.sink.produced.size() == 3);
    const std::size_t payload_size = f.sink.produced[2].event.value.size();
    REQUIRE(payload_size > 0);
    // the dead-letter topic refuses it too (its max.message.bytes)
    f.sink.ack(2, false, "Broker: Message size too large", true, "too_large");
    f.serve();
    REQUIRE(f.sink.produced.size() == 4);
    const auto& again = f.sink.produced[3].event;
    CHECK(again.topic == "dlq");
    CHECK(again.id == f.sink.produced[0].event.id);
    CHECK(again.value.empty());
    CHECK(headerOf(again, "outboxd.payload_omitted") == std::to_string(payload_size));
    CHECK_THAT(headerOf(again, "outboxd.error"), Catch::Contains("too large") && Catch::Contains("left out"));
    CHECK(headerOf(again, "outboxd.table") == "public.outbox");
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ack(3);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
    CHECK_THAT(f.metricsText(), Catch::Contains(R"(outboxd_events_dead_lettered_total{reason="too_large"} 1)"));
}

TEST_CASE("a dead-letter record over the producer's message.max.bytes goes without its payload", "[pipeline]") {
    Fixture f;
    f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
    f.config.invalid_rows.dead_letter_topic = "dlq";
    feedFirstTransaction(f);
    f.sink.ack(0, false, "Broker: Message size too large", true, "too_large");
    f.sink.ack(1);
    f.sink.reject_next = Error{ErrorKind::SinkRejected, "event is 2000000 bytes, more than message.max.bytes"};
    f.serve();
    REQUIRE(f.sink.produced.size() == 3);
    const auto& dead = f.sink.produced[2].event;
    CHECK(dead.topic == "dlq");
    CHECK(dead.value.empty());
    CHECK(headerOf(dead, "outboxd.payload_omitted") != "<absent>");
    f.sink.ack(2);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
}

TEST_CASE("an invalid row's dead-letter record over message.max.bytes goes without its payload", "[pipeline]") {
    Fixture f;
    f.config.routing.topic = *config::parseTemplate("bad topic/{aggregatetype}");
    f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
    f.config.invalid_rows.dead_letter_topic = "dlq";
    app::Pipeline pipeline{f.config, f.sink, f.metrics, 1, cdc::Lsn{0x100}};
    REQUIRE(pipeline.handleFrame(xlog(0x1000, golden("v1-begin"))));
    REQUIRE(pipeline.handleFrame(xlog(0, golden("v1-relation-outbox"))));
    f.sink.reject_next = Error{ErrorKind::SinkRejected, "event is 2000000 bytes, more than message.max.bytes"};
    auto r = pipeline.handleFrame(xlog(0x1010, golden("v1-insert")));
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r);
    REQUIRE(f.sink.produced.size() == 1);
    CHECK(f.sink.produced[0].event.topic == "dlq");
    CHECK(f.sink.produced[0].event.value.empty());
    CHECK(headerOf(f.sink.produced[0].event, "outboxd.payload_omitted") != "<absent>");
    CHECK_THAT(headerOf(f.sink.produced[0].event, "outboxd.error"), Catch::Contains("left out"));
}

TEST_CASE("an event whose topic is the dead-letter topic's name is still dead-lettered as an event", "[pipeline]") {
    Fixture f;
    f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
    f.config.invalid_rows.dead_letter_topic = "outbox.event.order";  // what routing.topic renders here
    feedFirstTransaction(f);
    REQUIRE(f.sink.produced[0].event.topic == "outbox.event.order");
    f.sink.ack(0, false, "Broker: Message size too large", true, "too_large");
    f.sink.ack(1);
    f.serve();
    REQUIRE(f.sink.produced.size() == 3);
    const auto& dead = f.sink.produced[2].event;
    outboxd::v1::Event original;
    REQUIRE(original.ParseFromString(f.sink.produced[0].event.value));
    CHECK(dead.value == original.payload());
    CHECK(headerOf(dead, "outboxd.payload_omitted") == "<absent>");
    CHECK_THAT(headerOf(dead, "outboxd.error"), Catch::Contains("too large"));
    CHECK_THAT(f.metricsText(), Catch::Contains(R"(outboxd_events_dead_lettered_total{reason="too_large"} 1)"));
}

TEST_CASE("a dead-letter record refused for another reason still stops", "[pipeline]") {
    Fixture f;
    f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
    f.config.invalid_rows.dead_letter_topic = "dlq";
    feedFirstTransaction(f);
    f.sink.ack(0, false, "Broker: Message size too large", true, "too_large");
    f.sink.ack(1);
    f.serve();
    REQUIRE(f.sink.produced.size() == 3);
    f.sink.ack(2, false, "Broker: Topic authorization failed", true, "topic_refused");
    auto r = f.pipeline.serveDeliveries(0ms);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::SinkRejected);
    CHECK(f.sink.produced.size() == 3);
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
}

TEST_CASE("a fatal producer error ends the session as retriable", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    f.sink.fatal = Error{ErrorKind::SinkFatal, "fatal"};
    auto r = f.pipeline.serveDeliveries(0ms);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::SinkFatal);
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
}

TEST_CASE("update, delete and truncate on the outbox are counted and skipped", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    for (const char* name : {"v1-update", "v1-update-key", "v1-delete"}) {
        f.feed(xlog(0x2000, golden("v1-begin")));
        f.feed(xlog(0x2010, golden(name)));
        f.feed(xlog(commitEnd() + 0x100, golden("v1-commit")));
    }
    f.feed(xlog(0x3000, golden("v1-begin")));
    f.feed(xlog(0, golden("v1-relation-outbox-before-truncate")));
    f.feed(xlog(0x3010, golden("v1-truncate")));
    f.feed(xlog(commitEnd() + 0x200, golden("v1-commit")));
    CHECK(f.sink.produced.size() == 2);
    auto text = f.metricsText();
    CHECK_THAT(text, Catch::Contains(R"(outboxd_changes_skipped_total{kind="update"} 2)"));
    CHECK_THAT(text, Catch::Contains(R"(outboxd_changes_skipped_total{kind="delete"} 1)"));
    CHECK_THAT(text, Catch::Contains(R"(outboxd_changes_skipped_total{kind="truncate"} 1)"));
}

TEST_CASE("with routing.on_update fatal an UPDATE of an outbox row stops before confirming past it", "[pipeline]") {
    Fixture f;
    f.config.routing.on_update = config::OnUpdate::Fatal;
    feedFirstTransaction(f);
    f.sink.ackAll();
    f.serve();
    const auto confirmed = f.pipeline.confirmed();
    REQUIRE(f.pipeline.handleFrame(xlog(0x2000, golden("v1-begin"))));
    auto r = f.pipeline.handleFrame(xlog(0x2010, golden("v1-update")));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::InvalidRow);
    CHECK_FALSE(isRetriable(r.error().kind));
    CHECK_THAT(r.error().message, Catch::Contains("UPDATE of public.outbox") && Catch::Contains("on_update"));
    CHECK(r.error().table == "public.outbox");
    CHECK(f.pipeline.confirmed() == confirmed);
}

TEST_CASE("with routing.on_update warn or error an UPDATE is skipped and counted", "[pipeline]") {
    const auto policy = GENERATE(config::OnUpdate::Warn, config::OnUpdate::Error);
    Fixture f;
    f.config.routing.on_update = policy;
    feedFirstTransaction(f);
    f.feed(xlog(0x2000, golden("v1-begin")));
    f.feed(xlog(0x2010, golden("v1-update")));
    f.feed(xlog(commitEnd() + 0x100, golden("v1-commit")));
    CHECK(f.sink.produced.size() == 2);
    CHECK_THAT(f.metricsText(), Catch::Contains(R"(outboxd_changes_skipped_total{kind="update"} 1)"));
}

TEST_CASE("logical decoding messages are decoded and counted, in and out of transactions", "[pipeline]") {
    Fixture f;
    f.feed(xlog(0x1000, golden("v1-begin")));
    f.feed(xlog(0, golden("v1-relation-outbox")));
    f.feed(xlog(0x1008, golden("v1-message-transactional")));
    f.feed(xlog(0x1010, golden("v1-insert-after-message")));
    f.feed(xlog(commitEnd(), golden("v1-commit")));
    f.feed(xlog(commitEnd() + 8, golden("v1-message-non-transactional")));
    CHECK(f.sink.produced.size() == 1);
    CHECK(f.sink.produced[0].event.type == "WithMessage");
    auto text = f.metricsText();
    CHECK_THAT(text, Catch::Contains(R"(outboxd_logical_messages_total{transactional="true"} 1)"));
    CHECK_THAT(text, Catch::Contains(R"(outboxd_logical_messages_total{transactional="false"} 1)"));
}

TEST_CASE("after ALTER TABLE ADD COLUMN, columns are still found by name", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    f.feed(xlog(0x2000, golden("v1-begin")));
    f.feed(xlog(0, golden("v1-relation-outbox-altered")));
    f.feed(xlog(0x2010, golden("v1-insert-altered")));
    f.feed(xlog(commitEnd() + 0x100, golden("v1-commit")));
    REQUIRE(f.sink.produced.size() == 3);
    CHECK(f.sink.produced[2].event.type == "AfterAlter");
    CHECK(f.sink.produced[2].event.key == "45");
}

TEST_CASE("a mapped column that disappears stops before any event of that relation", "[pipeline]") {
    Fixture f;
    feedFirstTransaction(f);
    f.sink.ackAll();
    f.serve();
    const auto confirmed = f.pipeline.confirmed();
    // The outbox relation re-sent without its 'type' column (ALTER TABLE ... DROP COLUMN type).
    Builder rel;
    rel.ch('R').u32(16385).str("public").str("outbox").u8('d').u16(4);
    rel.u8(1).str("id").u32(2950).i32(-1);
    rel.u8(0).str("aggregatetype").u32(25).i32(-1);
    rel.u8(0).str("aggregateid").u32(25).i32(-1);
    rel.u8(0).str("payload").u32(3802).i32(-1);
    f.feed(xlog(0x2000, golden("v1-begin")));
    auto r = f.pipeline.handleFrame(xlog(0, rel.bytes()));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::MappedColumnMissing);
    CHECK_FALSE(isRetriable(r.error().kind));
    CHECK_THAT(r.error().message, Catch::Contains("'type'") && Catch::Contains("public.outbox"));
    CHECK(f.sink.produced.size() == 2);
    CHECK(f.pipeline.confirmed() == confirmed);
}

TEST_CASE("undecodable messages and frames are errors that name the LSN", "[pipeline]") {
    Fixture f;
    SECTION("an unknown pgoutput message") {
        Bytes junk{std::byte{'Z'}, std::byte{1}};
        auto r = f.pipeline.handleFrame(xlog(0xABCDEF, junk));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::Decode);
        CHECK_THAT(r.error().message, Catch::Contains("0/ABCDEF"));
    }
    SECTION("a truncated insert") {
        f.feed(xlog(0x1000, golden("v1-begin")));
        f.feed(xlog(0, golden("v1-relation-outbox")));
        auto insert = golden("v1-insert");
        insert.resize(insert.size() - 3);
        auto r = f.pipeline.handleFrame(xlog(0x1010, insert));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::Decode);
        CHECK(f.sink.produced.empty());
    }
    SECTION("a truncated CopyData frame reconnects") {
        auto frame = keepalive(0x10);
        frame.pop_back();
        auto r = f.pipeline.handleFrame(frame);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::SourceWire);
        CHECK(isRetriable(r.error().kind));
    }
    SECTION("an insert outside a transaction") {
        f.feed(xlog(0, golden("v1-relation-outbox")));
        auto r = f.pipeline.handleFrame(xlog(0x1010, golden("v1-insert")));
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("outside a transaction"));
    }
    SECTION("a streamed transaction the relay did not ask for") {
        auto r = f.pipeline.handleFrame(xlog(0x1010, golden("v2-stream-start-1")));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::Decode);
    }
}

TEST_CASE("a row the router refuses is an error and nothing is produced for it", "[pipeline]") {
    Fixture f;
    f.config.routing.topic = *config::parseTemplate("bad topic/{aggregatetype}");
    app::Pipeline pipeline{f.config, f.sink, f.metrics, 1, cdc::Lsn{0x100}};
    REQUIRE(pipeline.handleFrame(xlog(0x1000, golden("v1-begin"))));
    REQUIRE(pipeline.handleFrame(xlog(0, golden("v1-relation-outbox"))));
    auto r = pipeline.handleFrame(xlog(0x1010, golden("v1-insert")));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::InvalidRow);
    CHECK(f.sink.produced.empty());
}

TEST_CASE("a refused row's error carries its table and LSN for the structured log fields", "[pipeline]") {
    Fixture f;
    f.config.routing.topic = *config::parseTemplate("bad topic/{aggregatetype}");
    app::Pipeline pipeline{f.config, f.sink, f.metrics, 1, cdc::Lsn{0x100}};
    REQUIRE(pipeline.handleFrame(xlog(0x1000, golden("v1-begin"))));
    REQUIRE(pipeline.handleFrame(xlog(0, golden("v1-relation-outbox"))));
    auto r = pipeline.handleFrame(xlog(0x1010, golden("v1-insert")));
    REQUIRE_FALSE(r);
    CHECK(r.error().table == "public.outbox");
    CHECK(r.error().lsn == "0/1010");
}

namespace {
// 'M' Message (protocol v1): flags (1 = transactional), LSN, prefix, content length, content.
Bytes messageFrame(bool transactional, std::uint64_t lsn, std::string_view prefix, std::string_view content) {
    Builder b;
    b.ch('M').u8(transactional ? 1 : 0).u64(lsn).str(prefix).i32(static_cast<std::int32_t>(content.size()));
    b.raw(content);
    return b.bytes();
}

constexpr std::string_view kMessageEvent =
    R"({"id": "7d3b6a7e-0c9e-4f7e-9a51-7b1c2e3d4f50", "aggregatetype": "user", "aggregateid": "7",
        "type": "UserRegistered", "payload": {"name": "ana", "n": [1, 2.50]}, "other": true})";
}  // namespace

TEST_CASE("a transactional logical message with a listed prefix is an event of its transaction", "[pipeline]") {
    Fixture f;
    f.config.outbox.messages.prefixes = {"outbox"};
    f.feed(xlog(0x1000, golden("v1-begin")));
    f.feed(xlog(0x1008, messageFrame(true, 0x1008, "outbox", kMessageEvent)));
    f.feed(xlog(0x1009, messageFrame(true, 0x1009, "other", "not json at all")));
    f.feed(xlog(commitEnd(), golden("v1-commit")));
    REQUIRE(f.sink.produced.size() == 1);
    const auto& ev = f.sink.produced[0].event;
    CHECK(ev.topic == "outbox.event.user");
    CHECK(ev.key == "7");
    CHECK(ev.id == "7d3b6a7e-0c9e-4f7e-9a51-7b1c2e3d4f50");
    CHECK(ev.type == "UserRegistered");
    outboxd::v1::Event envelope;
    REQUIRE(envelope.ParseFromString(ev.value));
    CHECK(envelope.payload() == R"({"name": "ana", "n": [1, 2.50]})");
    CHECK(envelope.content_type() == "application/json");
    CHECK(envelope.source().schema() == "pg_logical_emit_message");
    CHECK(envelope.source().table() == "outbox");
    CHECK(envelope.source().lsn() == 0x1008);
    // confirmed only once Kafka acknowledges it
    CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
    f.sink.ack(0);
    f.serve();
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
}

TEST_CASE("a logical message whose content is not a JSON object stops, or is dead-lettered", "[pipeline]") {
    const auto content = GENERATE(std::string_view("not json"), std::string_view("[1, 2]"),
                                  std::string_view(R"({"id": "x")"), std::string_view(R"({"id": "x"} trailing)"));
    CAPTURE(content);
    {
        Fixture f;
        f.config.outbox.messages.prefixes = {"outbox"};
        f.feed(xlog(0x1000, golden("v1-begin")));
        auto r = f.pipeline.handleFrame(xlog(0x1008, messageFrame(true, 0x1008, "outbox", content)));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::InvalidRow);
        CHECK_THAT(r.error().message, Catch::Contains("prefix 'outbox'") && Catch::Contains("0/1008"));
        CHECK(r.error().table == "pg_logical_emit_message.outbox");
        CHECK(f.sink.produced.empty());
    }
    {
        Fixture f;
        f.config.outbox.messages.prefixes = {"outbox"};
        f.config.invalid_rows.action = config::InvalidRowAction::DeadLetter;
        f.config.invalid_rows.dead_letter_topic = "dlq";
        f.feed(xlog(0x1000, golden("v1-begin")));
        f.feed(xlog(0x1008, messageFrame(true, 0x1008, "outbox", content)));
        f.feed(xlog(commitEnd(), golden("v1-commit")));
        REQUIRE(f.sink.produced.size() == 1);
        const auto& dead = f.sink.produced[0].event;
        CHECK(dead.topic == "dlq");
        CHECK(dead.value == content);
        CHECK(dead.key_is_null);
        CHECK_THAT(f.metricsText(), Catch::Contains(R"(outboxd_events_dead_lettered_total{reason="bad_message"} 1)"));
        f.sink.ack(0);
        f.serve();
        CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
    }
}

TEST_CASE("a non-transactional logical message with a listed prefix is refused, or accepted as its own event",
          "[pipeline]") {
    {
        Fixture f;
        f.config.outbox.messages.prefixes = {"outbox"};
        auto r = f.pipeline.handleFrame(xlog(0x5000, messageFrame(false, 0x5000, "outbox", kMessageEvent)));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::InvalidRow);
        CHECK_FALSE(isRetriable(r.error().kind));
        CHECK_THAT(r.error().message, Catch::Contains("non_transactional: accept"));
        CHECK(f.sink.produced.empty());
    }
    {
        Fixture f;
        f.config.outbox.messages.prefixes = {"outbox"};
        f.config.outbox.messages.non_transactional = config::NonTransactional::Accept;
        f.feed(xlog(0x5000, messageFrame(false, 0x5000, "outbox", kMessageEvent)));
        REQUIRE(f.sink.produced.size() == 1);
        CHECK(f.sink.produced[0].event.id == "7d3b6a7e-0c9e-4f7e-9a51-7b1c2e3d4f50");
        CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
        f.sink.ack(0);
        f.serve();
        CHECK(f.pipeline.confirmed() == cdc::Lsn{0x5000});
    }
    {
        // with the queue full, its own transaction is not committed before the record is queued
        Fixture f;
        f.config.outbox.messages.prefixes = {"outbox"};
        f.config.outbox.messages.non_transactional = config::NonTransactional::Accept;
        f.sink.capacity = 0;
        f.feed(xlog(0x5000, messageFrame(false, 0x5000, "outbox", kMessageEvent)));
        CHECK(f.pipeline.blocked());
        f.feed(keepalive(0x6000));
        f.serve();
        CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
        f.sink.capacity = 10;
        REQUIRE(f.pipeline.retryHeld());
        REQUIRE(f.sink.produced.size() == 1);
        CHECK(f.pipeline.confirmed() == cdc::Lsn{0x100});
        f.sink.ack(0);
        f.serve();
        CHECK(f.pipeline.confirmed() >= cdc::Lsn{0x5000});
    }
}

namespace {
std::uint64_t beginFinalLsn() {
    // Begin: 'B', final (commit) LSN, commit time, xid.
    auto bytes = golden("v1-begin");
    std::uint64_t lsn = 0;
    for (int i = 1; i < 9; ++i) lsn = (lsn << 8) | std::to_integer<std::uint64_t>(bytes[static_cast<std::size_t>(i)]);
    return lsn;
}
}  // namespace

TEST_CASE("exactly-once restart: a transaction at or below the checkpoint is skipped, counted, and confirmable",
          "[pipeline][eos]") {
    const std::uint64_t commit_lsn = beginFinalLsn();
    REQUIRE(commit_lsn > 0);
    Fixture f;
    f.pipeline.setSkipRule(cdc::SkipRule(cdc::CheckpointRecord{7, cdc::Lsn{commit_lsn}, cdc::Lsn{commitEnd()}}));
    CHECK(f.pipeline.atTransactionBoundary());
    feedFirstTransaction(f);
    CHECK(f.sink.produced.empty());
    CHECK(f.pipeline.skippedTransactions() == 1);
    CHECK(f.pipeline.atTransactionBoundary());
    CHECK(f.pipeline.confirmed() == cdc::Lsn{commitEnd()});
    CHECK(f.pipeline.lastCommit().commit_lsn == cdc::Lsn{commit_lsn});
    CHECK(f.pipeline.lastCommit().end_lsn == cdc::Lsn{commitEnd()});
    CHECK_THAT(f.metricsText(), Catch::Contains("checkpointed_transaction"));
}

TEST_CASE("exactly-once restart: a transaction committed after the checkpoint is delivered", "[pipeline][eos]") {
    const std::uint64_t commit_lsn = beginFinalLsn();
    Fixture f;
    f.pipeline.setSkipRule(cdc::SkipRule(cdc::CheckpointRecord{7, cdc::Lsn{commit_lsn - 1}, cdc::Lsn{commit_lsn}}));
    f.feed(xlog(0x1000, golden("v1-begin")));
    CHECK_FALSE(f.pipeline.atTransactionBoundary());
    CHECK(f.pipeline.openCommitLsn() == cdc::Lsn{commit_lsn});
    f.feed(xlog(0, golden("v1-relation-outbox")));
    f.feed(xlog(0x1010, golden("v1-insert")));
    f.feed(xlog(0x1020, golden("v1-insert-null")));
    f.feed(xlog(commitEnd(), golden("v1-commit")));
    CHECK(f.sink.produced.size() == 2);
    CHECK(f.pipeline.skippedTransactions() == 0);
    CHECK(f.pipeline.lastCommit().end_lsn == cdc::Lsn{commitEnd()});
}
