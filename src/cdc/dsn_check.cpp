#include "cdc/dsn_check.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <span>
#include <string_view>

#include <fmt/format.h>

namespace outboxd::cdc {

namespace {

struct Choices {
    std::string_view option;
    std::span<const std::string_view> values;
};

// The values libpq accepts (PostgreSQL 17 docs, "Parameter Key Words").
constexpr std::array<std::string_view, 6> kSslModes{"disable", "allow", "prefer", "require", "verify-ca",
                                                    "verify-full"};
constexpr std::array<std::string_view, 3> kGssEncModes{"disable", "prefer", "require"};
constexpr std::array<std::string_view, 3> kChannelBinding{"disable", "prefer", "require"};
constexpr std::array<std::string_view, 6> kTargetSessionAttrs{"any",     "read-write", "read-only",
                                                              "primary", "standby",    "prefer-standby"};
constexpr std::array<std::string_view, 2> kLoadBalanceHosts{"disable", "random"};
constexpr std::array<std::string_view, 2> kSslNegotiation{"postgres", "direct"};

constexpr std::array<Choices, 6> kChoices{{
    {"sslmode", kSslModes},
    {"gssencmode", kGssEncModes},
    {"channel_binding", kChannelBinding},
    {"target_session_attrs", kTargetSessionAttrs},
    {"load_balance_hosts", kLoadBalanceHosts},
    {"sslnegotiation", kSslNegotiation},
}};

// Options libpq reads as integers (parse_int_param in fe-connect.c).
constexpr std::array<std::string_view, 6> kIntegers{"connect_timeout",     "keepalives",       "keepalives_idle",
                                                    "keepalives_interval", "keepalives_count", "tcp_user_timeout"};

std::string join(std::span<const std::string_view> words) {
    std::string out;
    for (const auto w : words) {
        if (!out.empty()) out += ", ";
        out += w;
    }
    return out;
}

std::string_view trimSpaces(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
    return s;
}

bool isInteger(std::string_view s) {
    s = trimSpaces(s);
    if (s.starts_with('-') || s.starts_with('+')) s.remove_prefix(1);
    long long v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && ptr == s.data() + s.size();
}

bool isPortList(std::string_view s) {
    while (true) {
        const auto comma = s.find(',');
        const std::string_view port = trimSpaces(s.substr(0, comma));
        if (!port.empty()) {
            int v = 0;
            const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
            if (ec != std::errc{} || ptr != port.data() + port.size() || v < 1 || v > 65535) return false;
        }
        if (comma == std::string_view::npos) return true;
        s.remove_prefix(comma + 1);
    }
}

// The quoted name in one of libpq's parse errors that names an option, e.g.
// `invalid connection option "foo"`; empty for the messages that quote part of a value.
std::string namedOption(std::string_view message) {
    for (const std::string_view lead : {std::string_view("invalid connection option \""),
                                        std::string_view("invalid URI query parameter: \"")}) {
        if (message.starts_with(lead)) {
            message.remove_prefix(lead.size());
            const auto close = message.find('"');
            if (close != std::string_view::npos) return std::string(message.substr(0, close));
        }
    }
    return {};
}

std::string parseProblem(std::string_view message) {
    constexpr std::string_view kInvalid =
        "source.postgres.dsn is not a valid libpq connection string (key=value pairs or a postgresql:// URI)";
    if (const std::string option = namedOption(message); !option.empty()) {
        return fmt::format("{}: libpq has no option '{}'; check its spelling (see libpq's \"Parameter Key "
                           "Words\")",
                           kInvalid, option);
    }
    if (message.find("unterminated quoted string") != std::string_view::npos) {
        return fmt::format("{}: a quoted value is not closed; end it with '", kInvalid);
    }
    if (message.starts_with("missing \"=\"")) {
        return fmt::format("{}: a word has no '=' after it; quote values with spaces in single quotes", kInvalid);
    }
    return fmt::format("{}; check quoting of values with spaces and percent-encoding in URIs", kInvalid);
}

}  // namespace

std::optional<std::string> checkDsn(const std::string& dsn) {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &err);
    if (parsed == nullptr) {
        // libpq's message may quote part of the DSN, which may be the password: only its kind and
        // an option's name are shown.
        std::string problem = parseProblem(err != nullptr ? std::string_view(err) : std::string_view());
        if (err != nullptr) PQfreemem(err);
        return problem;
    }
    std::optional<std::string> problem;
    for (const PQconninfoOption* o = parsed; o->keyword != nullptr && !problem; ++o) {
        if (o->val == nullptr) continue;
        const std::string_view name = o->keyword;
        const std::string_view value = o->val;
        if (name == "port" && !isPortList(value)) {
            problem = "source.postgres.dsn: option 'port' must be a number from 1 to 65535 (or a comma-separated "
                      "list of them, one per host)";
        }
        if (std::ranges::find(kIntegers, name) != kIntegers.end() && !isInteger(value)) {
            problem = fmt::format("source.postgres.dsn: option '{}' must be an integer", name);
        }
        for (const auto& c : kChoices) {
            if (name == c.option && std::ranges::find(c.values, value) == c.values.end()) {
                problem = fmt::format("source.postgres.dsn: option '{}' must be one of {}", name, join(c.values));
            }
        }
    }
    PQconninfoFree(parsed);
    return problem;
}

}  // namespace outboxd::cdc
