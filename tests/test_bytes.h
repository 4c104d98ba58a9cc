#pragma once
// Helpers shared by the unit tests: golden hex files under OUTBOXD_TEST_DATA_DIR and a
// big-endian byte builder for synthetic messages.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "cdc/lsn.h"

#ifndef OUTBOXD_TEST_DATA_DIR
#error "OUTBOXD_TEST_DATA_DIR must point at tests/data"
#endif

namespace outboxd::test {

using Bytes = std::vector<std::byte>;

inline std::string dataPath(std::string_view relative) {
    return std::string(OUTBOXD_TEST_DATA_DIR) + "/" + std::string(relative);
}

inline Bytes fromHex(std::string_view hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        throw std::runtime_error("bad hex digit");
    };
    Bytes out;
    std::string digits;
    for (char c : hex) {
        if (c != '\n' && c != '\r' && c != ' ') digits.push_back(c);
    }
    if (digits.size() % 2 != 0) throw std::runtime_error("odd number of hex digits");
    for (std::size_t i = 0; i < digits.size(); i += 2) {
        out.push_back(static_cast<std::byte>(nibble(digits[i]) * 16 + nibble(digits[i + 1])));
    }
    return out;
}

// Reads tests/data/pgoutput/<name>.hex.
inline Bytes golden(std::string_view name) {
    std::ifstream in(dataPath("pgoutput/" + std::string(name) + ".hex"));
    if (!in) throw std::runtime_error("missing golden file " + std::string(name));
    std::stringstream ss;
    ss << in.rdbuf();
    return fromHex(ss.str());
}

// tests/data/pgoutput/[pgNN/]MANIFEST.txt: "<file> <lsn> <xid> <what...>" per captured message.
struct ManifestEntry {
    std::string lsn;
    std::uint32_t xid = 0;
};

// The manifest of one capture folder ("" for PostgreSQL 15's, "pg16/" for 16's...).
inline const std::map<std::string, ManifestEntry>& manifest(const std::string& dir = "") {
    static std::map<std::string, std::map<std::string, ManifestEntry>> cache;
    auto it = cache.find(dir);
    if (it != cache.end()) return it->second;
    std::map<std::string, ManifestEntry> m;
    std::ifstream in(dataPath("pgoutput/" + dir + "MANIFEST.txt"));
    if (!in) throw std::runtime_error("missing " + dir + "MANIFEST.txt");
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string file;
        ManifestEntry e;
        ls >> file >> e.lsn >> e.xid;
        if (file.size() > 4) file.resize(file.size() - 4);  // drop ".hex"
        m.emplace(file, e);
    }
    return cache.emplace(dir, std::move(m)).first->second;
}

// The xid of a captured message; `name` may start with its folder ("pg18/v4-stream-abort-subxact").
inline std::uint32_t manifestXid(const std::string& name) {
    const auto slash = name.rfind('/');
    if (slash == std::string::npos) return manifest().at(name).xid;
    return manifest(name.substr(0, slash + 1)).at(name.substr(slash + 1)).xid;
}

// The lsn column pg_logical_slot_peek_binary_changes returned for a captured message.
inline std::string manifestLsn(const std::string& name) {
    const auto slash = name.rfind('/');
    if (slash == std::string::npos) return manifest().at(name).lsn;
    return manifest(name.substr(0, slash + 1)).at(name.substr(slash + 1)).lsn;
}

// Whether a capture holds a message (servers differ in what they send).
inline bool hasGolden(std::string_view name) {
    return std::ifstream(dataPath("pgoutput/" + std::string(name) + ".hex")).good();
}

// Big-endian builder for synthetic messages written from the protocol documentation.
class Builder {
public:
    Builder& ch(char c) { return u8(static_cast<std::uint8_t>(c)); }
    Builder& u8(std::uint8_t v) {
        bytes_.push_back(static_cast<std::byte>(v));
        return *this;
    }
    Builder& u16(std::uint16_t v) { return be(v, 2); }
    Builder& u32(std::uint32_t v) { return be(v, 4); }
    Builder& i32(std::int32_t v) { return be(static_cast<std::uint32_t>(v), 4); }
    Builder& u64(std::uint64_t v) { return be(v, 8); }
    Builder& i64(std::int64_t v) { return be(static_cast<std::uint64_t>(v), 8); }
    Builder& str(std::string_view s) {  // String: NUL-terminated
        raw(s);
        return u8(0);
    }
    Builder& raw(std::string_view s) {
        for (char c : s) ch(c);
        return *this;
    }
    Builder& text(std::string_view s) {  // TupleData 't' column
        ch('t');
        i32(static_cast<std::int32_t>(s.size()));
        return raw(s);
    }
    [[nodiscard]] const Bytes& bytes() const { return bytes_; }

private:
    Builder& be(std::uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i) bytes_.push_back(static_cast<std::byte>(v >> (8 * i)));
        return *this;
    }
    Bytes bytes_;
};

}  // namespace outboxd::test

namespace Catch {
template <>
struct StringMaker<outboxd::cdc::Lsn> {
    static std::string convert(const outboxd::cdc::Lsn& lsn) { return lsn.toString(); }
};
template <>
struct StringMaker<outboxd::cdc::Xid> {
    static std::string convert(const outboxd::cdc::Xid& xid) { return "xid " + std::to_string(xid.value); }
};
template <>
struct StringMaker<outboxd::cdc::PgTimestamp> {
    static std::string convert(const outboxd::cdc::PgTimestamp& t) { return std::to_string(t.micros) + "us"; }
};
}  // namespace Catch
