#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include "cdc/checkpoint.h"

using outboxd::cdc::CheckpointRecord;
using outboxd::cdc::decodeCheckpoint;
using outboxd::cdc::encodeCheckpoint;
using outboxd::cdc::Lsn;
using outboxd::cdc::SkipRule;

namespace {

std::string hex(const std::vector<std::byte>& bytes) {
    std::string out;
    for (auto b : bytes) out += fmt::format("{:02x}", std::to_integer<int>(b));
    return out;
}

std::vector<std::byte> unhex(std::string_view text) {
    std::vector<std::byte> out;
    for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
        out.push_back(static_cast<std::byte>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

Lsn lsn(std::string_view text) { return *Lsn::parse(text); }

}  // namespace

TEST_CASE("the checkpoint record's bytes are fixed: magic, version, system id, commit and end LSN",
          "[checkpoint]") {
    CheckpointRecord r{0x0102030405060708ULL, lsn("1/2A"), lsn("1/58")};
    CHECK(hex(encodeCheckpoint(r)) ==
          "4f584350"            // "OXCP"
          "01"                  // version 1
          "0102030405060708"    // system identifier
          "000000010000002a"    // commit LSN 1/2A
          "0000000100000058");  // end LSN 1/58
    CHECK(encodeCheckpoint(r).size() == outboxd::cdc::kCheckpointRecordSize);
}

TEST_CASE("a checkpoint record decodes to what was encoded, at the edges of the LSN range", "[checkpoint]") {
    auto r = GENERATE(CheckpointRecord{1, Lsn{1}, Lsn{2}},
                      CheckpointRecord{7390000000000000000ULL, lsn("0/FFFFFFFF"), lsn("1/0")},
                      CheckpointRecord{~0ULL, Lsn{~0ULL - 1}, Lsn{~0ULL}},
                      CheckpointRecord{0, lsn("16/B374D848"), lsn("16/B374D878")});
    auto decoded = decodeCheckpoint(encodeCheckpoint(r));
    REQUIRE(decoded);
    CHECK(*decoded == r);
}

TEST_CASE("a value that is not a version-1 checkpoint record is refused with the reason", "[checkpoint]") {
    const std::string good = "4f584350010102030405060708000000010000002a0000000100000058";
    REQUIRE(decodeCheckpoint(unhex(good)));
    struct Case {
        std::string bytes;
        std::string says;
    };
    auto c = GENERATE(Case{"", "no \"OXCP\" magic"},
                      Case{"4f5843", "no \"OXCP\" magic"},
                      Case{"4f584350", "no \"OXCP\" magic"},
                      Case{"7b227365", "another producer"},
                      Case{"4f584350020102030405060708000000010000002a0000000100000058", "version 2"},
                      Case{"4f584350000102030405060708000000010000002a0000000100000058", "version 0"},
                      Case{"4f584350010102030405060708000000010000002a00000001000000", "28 bytes"},
                      Case{"4f584350010102030405060708000000010000002a000000010000005800", "30 bytes"},
                      Case{"4f58435001010203040506070800000000000000000000000100000058", "commit LSN 0/0"},
                      Case{"4f584350010102030405060708000000010000002a000000010000002a", "must lie after"},
                      Case{"4f584350010102030405060708000000010000002a0000000100000029", "must lie after"});
    auto decoded = decodeCheckpoint(unhex(c.bytes));
    INFO(c.bytes);
    REQUIRE_FALSE(decoded);
    CHECK_THAT(decoded.error(), Catch::Contains(c.says));
}

TEST_CASE("the skip rule skips the transactions at or below the checkpoint and delivers the rest", "[checkpoint]") {
    // GIVEN a checkpoint naming the transaction committed at 1/1000 (its commit record ends at 1/1030)
    SkipRule rule(CheckpointRecord{42, lsn("1/1000"), lsn("1/1030")});

    // THEN the checkpointed transaction and those before it are skipped
    CHECK(rule.skip(lsn("1/1000")));
    CHECK(rule.skip(lsn("1/FFF")));
    CHECK(rule.skip(lsn("0/FFFFFFFF")));
    CHECK(rule.skip(Lsn{1}));
    // AND the next transaction is delivered, even when its commit record starts exactly where
    // the checkpointed one ends (adjacent commit records), or anywhere in between
    CHECK_FALSE(rule.skip(lsn("1/1030")));
    CHECK_FALSE(rule.skip(lsn("1/1001")));
    CHECK_FALSE(rule.skip(lsn("2/0")));
    CHECK_FALSE(rule.skip(Lsn{~0ULL}));
    // AND an invalid commit LSN is never taken for one Kafka has
    CHECK_FALSE(rule.skip(Lsn{}));
    CHECK(rule.position() == lsn("1/1030"));
}

TEST_CASE("without a checkpoint nothing is skipped", "[checkpoint]") {
    SkipRule rule(std::nullopt);
    CHECK_FALSE(rule.skip(Lsn{1}));
    CHECK_FALSE(rule.skip(lsn("1/1000")));
    CHECK_FALSE(rule.position().isValid());
    CHECK(rule.checkServer(42, Lsn{1}));
}

TEST_CASE("the 32-bit halves of an LSN order as one number in the skip rule", "[checkpoint]") {
    SkipRule rule(CheckpointRecord{42, lsn("0/FFFFFFF0"), lsn("1/10")});
    CHECK(rule.skip(lsn("0/FFFFFFF0")));
    CHECK_FALSE(rule.skip(lsn("1/0")));
    CHECK_FALSE(rule.skip(lsn("0/FFFFFFFF")));
}

TEST_CASE("a checkpoint of another cluster, or ahead of the server's WAL, is refused", "[checkpoint]") {
    SkipRule rule(CheckpointRecord{42, lsn("1/1000"), lsn("1/1030")});
    CHECK(rule.checkServer(42, lsn("1/1030")));
    CHECK(rule.checkServer(42, lsn("5/0")));

    auto other = rule.checkServer(43, lsn("5/0"));
    REQUIRE_FALSE(other);
    CHECK_THAT(other.error(), Catch::Contains("42") && Catch::Contains("43") && Catch::Contains("another cluster"));

    auto behind = rule.checkServer(42, lsn("1/102F"));
    REQUIRE_FALSE(behind);
    CHECK_THAT(behind.error(), Catch::Contains("1/1030") && Catch::Contains("1/102F") && Catch::Contains("lost WAL"));
}
