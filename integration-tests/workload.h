#pragma once
// The seed's workload for integration scenarios: user/group/membership events with known ids,
// keys and payloads, written the way the auth service does, and the checks on what Kafka holds.

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "outboxd/v1/event.pb.h"
#include "support.h"

using namespace std::chrono_literals;

namespace itest {

inline const char* const kTypes[] = {"user", "group", "membership"};
inline const char* const kEventTypes[] = {"Registered", "Updated", "Deleted"};

inline std::string eventId(int seq) { return fmt::format("00000000-0000-4000-8000-{:012d}", seq); }
inline std::string aggType(int seq) { return kTypes[seq % 3]; }
inline std::string aggId(int seq) { return fmt::format("{}-{}", aggType(seq), seq % 37); }
inline std::string evType(int seq) { return fmt::format("{}{}", aggType(seq), kEventTypes[(seq / 3) % 3]); }
// jsonb's own output form (keys shorter first), so it compares byte for byte.
inline std::string payload(int seq) { return fmt::format(R"({{"seq": {}, "name": "user-{}"}})", seq, seq); }

// Writes events [first, first+count) in transactions of `per_txn`, each with a users row too,
// the way the auth service does: the change and its outbox row in one transaction.
// The statements the auth service runs for event `seq`: its users row and its outbox row.
inline std::string eventSql(int seq) {
    return fmt::format(
        "INSERT INTO users (id, name, email) VALUES ({0}, 'user-{0}', 'u{0}@example.org') "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;"
        "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ('{1}', '{2}', '{3}', "
        "'{4}', '{5}');",
        seq, eventId(seq), aggType(seq), aggId(seq), evType(seq), payload(seq));
}

inline void writeEvents(Pg& pg, int first, int count, int per_txn, std::chrono::microseconds pause = 0us) {
    for (int base = first; base < first + count; base += per_txn) {
        std::string sql = "BEGIN;";
        for (int seq = base; seq < std::min(base + per_txn, first + count); ++seq) sql += eventSql(seq);
        sql += "COMMIT;";
        pg.exec(sql);
        if (pause > 0us) std::this_thread::sleep_for(pause);
    }
}

inline std::vector<std::string> topicsFor(const std::string& prefix) {
    std::vector<std::string> t;
    for (const char* type : kTypes) t.push_back(prefix + "." + type);
    return t;
}

struct Decoded {
    Record record;
    outboxd::v1::Event event;
    int seq = -1;
};

inline std::vector<Decoded> decodeAll(const std::vector<Record>& records) {
    std::vector<Decoded> out;
    for (const auto& r : records) {
        Decoded d;
        d.record = r;
        REQUIRE(d.event.ParseFromString(r.value));
        d.seq = std::stoi(d.event.id().substr(24));
        out.push_back(std::move(d));
    }
    return out;
}

// Each record carries exactly what the row said, where it should be.
inline void checkContent(const Decoded& d, const std::string& prefix, const std::string& table = "outbox") {
    const int seq = d.seq;
    INFO("event seq " << seq);
    CHECK(d.event.id() == eventId(seq));
    CHECK(d.record.topic == prefix + "." + aggType(seq));
    REQUIRE(d.record.key.has_value());
    CHECK(*d.record.key == aggId(seq));
    CHECK(d.record.headers.at("id") == eventId(seq));
    CHECK(d.record.headers.at("type") == evType(seq));
    CHECK(d.record.headers.at("aggregate_type") == aggType(seq));
    CHECK(d.record.headers.at("content-type") == "application/json");
    CHECK(d.event.aggregate_type() == aggType(seq));
    CHECK(d.event.aggregate_id() == aggId(seq));
    CHECK(d.event.type() == evType(seq));
    CHECK(d.event.payload() == payload(seq));
    CHECK(d.event.content_type() == "application/json");
    CHECK(d.event.source().table() == table);
    CHECK(d.event.source().schema() == "public");
    CHECK(d.event.source().lsn() > 0);
    CHECK(d.event.source().commit_lsn() >= d.event.source().lsn());
    CHECK(d.event.source().xid() > 0);
    CHECK(d.event.occurred_at().seconds() == d.event.source().commit_time().seconds());
    CHECK(d.event.source().commit_time().seconds() > 1'600'000'000);
}

inline void waitStreaming(Pg& pg, const std::string& slot, Daemon& daemon) {
    bool ok = eventually(
        [&] {
            return pg.scalar(fmt::format("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{}'", slot))
                .has_value();
        },
        60s);
    INFO(daemon.log());
    REQUIRE(ok);
}

inline std::uint64_t currentLsn(Pg& pg) { return parseLsn(*pg.scalar("SELECT pg_current_wal_insert_lsn()")); }

// Like writeEvents, but survives the database going away: a transaction that fails is retried
// on a new connection; one that had committed before the failure shows as a duplicate key.
inline void writeEventsResilient(const std::string& dsn, int first, int count, int per_txn,
                                 std::chrono::microseconds pause = 0us) {
    std::unique_ptr<Pg> pg;
    for (int base = first; base < first + count;) {
        try {
            if (!pg) pg = std::make_unique<Pg>(dsn);
            writeEvents(*pg, base, std::min(per_txn, first + count - base), per_txn);
            base += per_txn;
            if (pause > 0us) std::this_thread::sleep_for(pause);
        } catch (const std::exception& e) {
            if (std::string(e.what()).find("duplicate key") != std::string::npos) {
                base += per_txn;
                continue;
            }
            pg.reset();
            std::this_thread::sleep_for(200ms);
        }
    }
}

// Reads until every event in [first, first+count) was seen at least once (duplicates allowed),
// checking each against what was written. Returns how many records were read in all.
inline std::size_t awaitAll(KafkaReader& reader, const std::string& prefix, int first, int count,
                            std::chrono::seconds timeout) {
    std::set<int> seen;
    std::size_t total = 0;
    eventually(
        [&] {
            for (auto& d : decodeAll(reader.readUntil(static_cast<std::size_t>(-1), 1s))) {
                ++total;
                checkContent(d, prefix);
                if (d.seq >= first && d.seq < first + count) seen.insert(d.seq);
            }
            return static_cast<int>(seen.size()) == count;
        },
        timeout);
    INFO("events seen: " << seen.size() << " of " << count << ", records read: " << total);
    REQUIRE(static_cast<int>(seen.size()) == count);
    return total;
}

// The Java client's default partitioner for keyed records: murmur2 of the key bytes, positive,
// modulo the partition count (Kafka's Utils.murmur2 and BuiltInPartitioner.partitionForKey).
inline int javaPartition(const std::string& key, int partitions) {
    const std::uint32_t m = 0x5bd1e995;
    const int r = 24;
    const auto len = static_cast<std::uint32_t>(key.size());
    std::uint32_t h = 0x9747b28c ^ len;
    const auto* data = reinterpret_cast<const unsigned char*>(key.data());
    for (std::uint32_t i = 0; i + 4 <= len; i += 4) {
        std::uint32_t k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (static_cast<std::uint32_t>(data[i + 3]) << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const std::uint32_t rest = len & ~3u;
    switch (len % 4) {
        case 3: h ^= static_cast<std::uint32_t>(data[rest + 2]) << 16; [[fallthrough]];
        case 2: h ^= static_cast<std::uint32_t>(data[rest + 1]) << 8; [[fallthrough]];
        case 1: h ^= data[rest]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return static_cast<int>((h & 0x7fffffff) % static_cast<std::uint32_t>(partitions));
}

inline std::string tail(const std::string& log, std::size_t n = 6000) {
    return log.size() > n ? log.substr(log.size() - n) : log;
}

}  // namespace itest
