// Unit tests for the streaming replication CopyData messages (XLogData, primary keepalive,
// standby status update). Golden frames: tests/data/pgoutput/frame-*.hex, written by
// tests/data/capture-golden.sh from a real walsender (START_REPLICATION over libpq).

#include <catch2/catch.hpp>

#include <variant>

#include "cdc/pgoutput/decoder.h"
#include "cdc/wire/copy_data.h"
#include "test_bytes.h"

using namespace outboxd::cdc;
using namespace outboxd::cdc::wire;
using outboxd::test::Builder;
using outboxd::test::Bytes;
using outboxd::test::golden;

namespace {

XLogData xlog(const Bytes& frame) {
    auto parsed = parseServerMessage(frame);
    REQUIRE(parsed.has_value());
    REQUIRE(std::holds_alternative<XLogData>(*parsed));
    return std::get<XLogData>(*parsed);
}

template <typename T>
T decodeData(const XLogData& x) {
    auto m = pgoutput::decode(x.data, pgoutput::DecodeContext{1, false, x.wal_start});
    REQUIRE(m.has_value());
    REQUIRE(std::holds_alternative<T>(*m));
    return std::get<T>(*m);
}

bool plausibleTime(PgTimestamp t) {
    return t.unixMicros() > 1577836800LL * 1'000'000 && t.unixMicros() < 4102444800LL * 1'000'000;
}

}  // namespace

TEST_CASE("golden frames: one transaction as the walsender sent it", "[wire]") {
    auto f1 = golden("frame-xlogdata-1");
    auto f2 = golden("frame-xlogdata-2");
    auto f3 = golden("frame-xlogdata-3");
    auto f4 = golden("frame-xlogdata-4");

    auto x1 = xlog(f1);
    auto x2 = xlog(f2);
    auto x3 = xlog(f3);
    auto x4 = xlog(f4);

    CHECK(x1.data.size() == f1.size() - 25);
    CHECK(x1.data.data() == f1.data() + 25);  // a view, not a copy
    CHECK(x1.wal_start.isValid());
    CHECK(plausibleTime(x1.send_time));

    auto begin = decodeData<pgoutput::Begin>(x1);
    auto rel = decodeData<pgoutput::Relation>(x2);
    auto ins = decodeData<pgoutput::Insert>(x3);
    auto commit = decodeData<pgoutput::Commit>(x4);

    // Relation messages are not WAL records: the walsender sends them with LSN 0/0.
    CHECK(x2.wal_start == Lsn{0});
    CHECK(x2.wal_end == Lsn{0});
    CHECK(rel.name == "outbox");
    CHECK(ins.relation == rel.id);
    REQUIRE(ins.new_tuple.size() == 6);
    CHECK(ins.new_tuple[2].data == "49");
    CHECK(ins.new_tuple[3].data == "OverTheWire");

    CHECK(x3.wal_start == x1.wal_start);
    CHECK(commit.commit_lsn == begin.final_lsn);
    CHECK(x4.wal_start == commit.end_lsn);  // Commit is sent at the end of the transaction
    CHECK(x4.wal_end == commit.end_lsn);
    CHECK(x1.wal_start < x4.wal_start);
    CHECK(x1.send_time <= x4.send_time);
}

TEST_CASE("golden frames: primary keepalive", "[wire]") {
    auto frame = golden("frame-keepalive");
    REQUIRE(frame.size() == 18);
    auto parsed = parseServerMessage(frame);
    REQUIRE(parsed.has_value());
    REQUIRE(std::holds_alternative<PrimaryKeepalive>(*parsed));
    auto k = std::get<PrimaryKeepalive>(*parsed);
    CHECK(k.wal_end.isValid());
    CHECK(plausibleTime(k.send_time));
    CHECK_FALSE(k.reply_requested);
}

TEST_CASE("golden frames: every prefix", "[wire]") {
    auto name = GENERATE(as<std::string>{}, "frame-xlogdata-1", "frame-xlogdata-2", "frame-xlogdata-3",
                         "frame-xlogdata-4", "frame-keepalive");
    CAPTURE(name);
    auto frame = golden(name);
    for (std::size_t len = 0; len < frame.size(); ++len) {
        auto result = parseServerMessage(std::span(frame).first(len));
        if (len == 0) {
            REQUIRE_FALSE(result.has_value());
            CHECK(result.error().kind == WireErrorKind::Empty);
        } else if (frame[0] == std::byte{'w'} && len >= 25) {
            REQUIRE(result.has_value());
            CHECK(std::get<XLogData>(*result).data.size() == len - 25);
        } else {
            REQUIRE_FALSE(result.has_value());
            CHECK(result.error().kind == WireErrorKind::Truncated);
            CHECK(result.error().size == len);
            CHECK(result.error().message_kind == static_cast<char>(frame[0]));
        }
    }
}

TEST_CASE("synthetic XLogData", "[wire]") {
    Builder b;
    b.ch('w').u64(0x0000000100000020ULL).u64(0x0000000100000080ULL).i64(-1).raw("B");
    auto x = xlog(b.bytes());
    CHECK(x.wal_start.toString() == "1/20");
    CHECK(x.wal_end.toString() == "1/80");
    CHECK(x.send_time.micros == -1);
    REQUIRE(x.data.size() == 1);
    CHECK(x.data[0] == std::byte{'B'});

    Builder header;
    header.ch('w').u64(1).u64(2).i64(3);
    auto empty = xlog(header.bytes());
    CHECK(empty.data.empty());
}

TEST_CASE("synthetic primary keepalive", "[wire]") {
    Builder b;
    b.ch('k').u64(0x00000002000000FFULL).i64(800'000'000'000'000LL).u8(1);
    auto parsed = parseServerMessage(b.bytes());
    REQUIRE(parsed.has_value());
    auto k = std::get<PrimaryKeepalive>(*parsed);
    CHECK(k.wal_end == Lsn{0x00000002000000FFULL});
    CHECK(k.send_time.micros == 800'000'000'000'000LL);
    CHECK(k.reply_requested);

    SECTION("one byte short") {
        auto bytes = b.bytes();
        bytes.pop_back();
        auto r = parseServerMessage(bytes);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == WireErrorKind::Truncated);
        CHECK(r.error().size == 17);
    }
    SECTION("one byte too many") {
        auto bytes = b.bytes();
        bytes.push_back(std::byte{0});
        auto r = parseServerMessage(bytes);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == WireErrorKind::TrailingBytes);
        CHECK(r.error().message_kind == 'k');
        CHECK(r.error().size == 19);
        CHECK_FALSE(r.error().detail.empty());
    }
}

TEST_CASE("unknown CopyData kinds", "[wire]") {
    auto kind = GENERATE('r', 'x', '\0', 'W', 'K');
    Builder b;
    b.ch(kind).u64(0).u64(0).u64(0);
    auto r = parseServerMessage(b.bytes());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == WireErrorKind::UnknownKind);
    CHECK(r.error().message_kind == kind);
    CHECK(r.error().size == 25);
}

TEST_CASE("standby status update encoding", "[wire]") {
    StandbyStatusUpdate u{
        .written = Lsn{0x0102030405060708ULL},
        .flushed = Lsn{0x1112131415161718ULL},
        .applied = Lsn{0x2122232425262728ULL},
        .client_time = PgTimestamp{0x3132333435363738LL},
        .reply_requested = true,
    };
    auto bytes = encode(u);
    Builder expected;
    expected.ch('r')
        .u64(0x0102030405060708ULL)
        .u64(0x1112131415161718ULL)
        .u64(0x2122232425262728ULL)
        .u64(0x3132333435363738ULL)
        .u8(1);
    REQUIRE(expected.bytes().size() == kStandbyStatusUpdateSize);
    CHECK(Bytes(bytes.begin(), bytes.end()) == expected.bytes());

    SECTION("negative time and no reply") {
        u.client_time = PgTimestamp{-2};
        u.reply_requested = false;
        auto b2 = encode(u);
        for (std::size_t i = 25; i < 32; ++i) {
            CHECK(b2[i] == std::byte{0xFF});
        }
        CHECK(b2[32] == std::byte{0xFE});
        CHECK(b2[33] == std::byte{0});
    }
    SECTION("time from the Unix clock") {
        u.client_time = PgTimestamp::fromUnixMicros(946684800LL * 1'000'000 + 5);
        auto b3 = encode(u);
        CHECK(b3[32] == std::byte{5});
        CHECK(b3[31] == std::byte{0});
    }
}
