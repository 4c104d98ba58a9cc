#pragma once
// Strong types for PostgreSQL's log sequence numbers and transaction ids.
// Lsn is a 64-bit WAL position printed as "X/Y" (high and low 32 bits in hex),
// as pg_lsn does. Value type, no state beyond the number.

#include <charconv>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace outboxd::cdc {

class Lsn {
public:
    constexpr Lsn() = default;
    constexpr explicit Lsn(std::uint64_t value) : value_(value) {}

    [[nodiscard]] constexpr std::uint64_t value() const { return value_; }
    [[nodiscard]] constexpr bool isValid() const { return value_ != 0; }

    constexpr auto operator<=>(const Lsn&) const = default;

    // Parses "X/Y" as PostgreSQL prints it (pg_lsn_in).
    [[nodiscard]] static std::optional<Lsn> parse(std::string_view text) {
        auto slash = text.find('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
            return std::nullopt;
        }
        std::uint32_t hi = 0;
        std::uint32_t lo = 0;
        auto hiPart = text.substr(0, slash);
        auto loPart = text.substr(slash + 1);
        auto r1 = std::from_chars(hiPart.data(), hiPart.data() + hiPart.size(), hi, 16);
        auto r2 = std::from_chars(loPart.data(), loPart.data() + loPart.size(), lo, 16);
        if (r1.ec != std::errc{} || r1.ptr != hiPart.data() + hiPart.size() ||
            r2.ec != std::errc{} || r2.ptr != loPart.data() + loPart.size()) {
            return std::nullopt;
        }
        return Lsn{(static_cast<std::uint64_t>(hi) << 32) | lo};
    }

    [[nodiscard]] std::string toString() const {
        return fmt::format("{:X}/{:X}", static_cast<std::uint32_t>(value_ >> 32),
                           static_cast<std::uint32_t>(value_));
    }

private:
    std::uint64_t value_ = 0;
};

struct Xid {
    std::uint32_t value = 0;
    constexpr auto operator<=>(const Xid&) const = default;
};

// Microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's TimestampTz epoch.
struct PgTimestamp {
    std::int64_t micros = 0;
    constexpr auto operator<=>(const PgTimestamp&) const = default;

    // Seconds between the Unix epoch and PostgreSQL's epoch.
    static constexpr std::int64_t kUnixEpochOffsetSeconds = 946684800;

    [[nodiscard]] constexpr std::int64_t unixMicros() const {
        return micros + kUnixEpochOffsetSeconds * 1'000'000;
    }
    [[nodiscard]] static constexpr PgTimestamp fromUnixMicros(std::int64_t unixMicros) {
        return PgTimestamp{unixMicros - kUnixEpochOffsetSeconds * 1'000'000};
    }
};

}  // namespace outboxd::cdc

template <>
struct fmt::formatter<outboxd::cdc::Lsn> : fmt::formatter<std::string> {
    auto format(const outboxd::cdc::Lsn& lsn, fmt::format_context& ctx) const {
        return fmt::formatter<std::string>::format(lsn.toString(), ctx);
    }
};
