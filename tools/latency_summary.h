#pragma once
// Small pieces the benchmark tools share: the "ts" of outboxd-load's payload JSON, and the one
// summary line of latency percentiles that bench/steady.sh parses.

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace outboxd::tools {

// The number after the key "ts" in a JSON text (also when the JSON is itself inside a JSON string,
// with escaped quotes), or -1.
inline std::int64_t payloadTs(std::string_view json) {
    for (std::size_t at = json.find("ts"); at != std::string_view::npos; at = json.find("ts", at + 2)) {
        if (at == 0 || json[at - 1] != '"') continue;
        std::size_t i = at + 2;
        if (i < json.size() && json[i] == '\\') ++i;
        if (i >= json.size() || json[i] != '"') continue;
        ++i;
        while (i < json.size() && (json[i] == ' ' || json[i] == ':')) ++i;
        std::int64_t v = 0;
        std::size_t digits = 0;
        for (; i < json.size() && json[i] >= '0' && json[i] <= '9'; ++i, ++digits) v = v * 10 + (json[i] - '0');
        if (digits > 0) return v;
    }
    return -1;
}

// "received=N p50_ms=.. p99_ms=.. max_ms=..", each name after `prefix`: the line bench/steady.sh
// reads. Sorts `ms`.
inline void printLatencySummary(std::vector<double>& ms, std::string_view prefix = {}) {
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) {
        if (ms.empty()) return 0.0;
        return ms[static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1))];
    };
    fmt::print("{0}received={1} {0}p50_ms={2:.3f} {0}p99_ms={3:.3f} {0}max_ms={4:.3f}\n", prefix, ms.size(), pct(0.50),
               pct(0.99), ms.empty() ? 0.0 : ms.back());
}

}  // namespace outboxd::tools
