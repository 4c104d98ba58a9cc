#include "cdc/source_checks.h"

#include <charconv>

#include <fmt/format.h>

namespace outboxd::cdc {

namespace {

constexpr std::string_view kRecordPrefix = "outboxd slot=";

std::vector<std::string_view> lines(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        out.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

// "outboxd slot=<name> confirmed_lsn=<lsn>" -> name, lsn text.
std::optional<std::pair<std::string_view, std::string_view>> parseRecordLine(std::string_view line) {
    if (!line.starts_with(kRecordPrefix)) return std::nullopt;
    line.remove_prefix(kRecordPrefix.size());
    auto space = line.find(' ');
    std::string_view name = line.substr(0, space);
    std::string_view lsn;
    if (space != std::string_view::npos) {
        std::string_view rest = line.substr(space + 1);
        constexpr std::string_view kLsn = "confirmed_lsn=";
        if (rest.starts_with(kLsn)) lsn = rest.substr(kLsn.size());
    }
    if (name.empty()) return std::nullopt;
    return std::pair{name, lsn};
}

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += '\n';
        out += p;
    }
    return out;
}

}  // namespace

std::optional<std::chrono::milliseconds> parseDurationSetting(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || n < 0) return std::nullopt;
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    std::int64_t ms = 0;
    if (unit.empty() || unit == "ms") {
        ms = n;
    } else if (unit == "us") {
        ms = n / 1000;
    } else if (unit == "s") {
        ms = n * 1000;
    } else if (unit == "min") {
        ms = n * 60'000;
    } else if (unit == "h") {
        ms = n * 3'600'000;
    } else if (unit == "d") {
        ms = n * 86'400'000;
    } else {
        return std::nullopt;
    }
    return std::chrono::milliseconds(ms);
}

ConnectFailure classifyConnectFailure(std::string_view message) {
    auto has = [&](std::string_view s) { return message.find(s) != std::string_view::npos; };
    if (has("must be superuser or replication role") || has("permission denied to start WAL sender") ||
        has("REPLICATION attribute")) {
        return {ErrorKind::SourcePermission,
                "the role needs the REPLICATION attribute: ALTER ROLE <user> WITH REPLICATION (on managed "
                "PostgreSQL, grant the provider's replication role), then restart outboxd"};
    }
    if (has("authentication failed") || has("no pg_hba.conf entry") || has("permission denied") ||
        (has("role \"") && has("\" does not exist"))) {
        return {ErrorKind::SourcePermission,
                "check the user, password and pg_hba.conf (a 'replication' or database entry for this user), "
                "and that the role has the REPLICATION attribute"};
    }
    if (has("database \"") && has("\" does not exist")) {
        return {ErrorKind::SourceSetting,
                "the database named by dbname in source.postgres.dsn does not exist: fix dbname (or create the "
                "database), then restart outboxd"};
    }
    if (has("invalid sslmode value") || has("sslmode value \"")) {
        return {ErrorKind::SourceSetting,
                "sslmode in source.postgres.dsn must be one of disable, allow, prefer, require, verify-ca, "
                "verify-full (and TLS must be compiled into libpq); fix it, then restart outboxd"};
    }
    if (has("invalid integer value") || has("invalid port number")) {
        return {ErrorKind::SourceSetting,
                "an option of source.postgres.dsn that takes a number has another value (port must be 1 to "
                "65535); fix it, then restart outboxd"};
    }
    if (has("invalid connection option") || (message.starts_with("invalid ") && has(" value"))) {
        return {ErrorKind::SourceSetting,
                "libpq refuses an option of source.postgres.dsn; fix the option it names, then restart outboxd"};
    }
    return {};
}

std::optional<SlotRecord> findSlotRecord(std::string_view comment, std::string_view slot) {
    for (auto line : lines(comment)) {
        auto parsed = parseRecordLine(line);
        if (!parsed || parsed->first != slot) continue;
        return SlotRecord{std::string(slot), Lsn::parse(parsed->second).value_or(Lsn{})};
    }
    return std::nullopt;
}

std::string withSlotRecord(std::string_view comment, const SlotRecord& record) {
    std::vector<std::string> out;
    std::string mine = fmt::format("{}{} confirmed_lsn={}", kRecordPrefix, record.slot, record.confirmed);
    bool replaced = false;
    for (auto line : lines(comment)) {
        auto parsed = parseRecordLine(line);
        if (parsed && parsed->first == record.slot) {
            if (!replaced) out.push_back(mine);
            replaced = true;
        } else {
            out.emplace_back(line);
        }
    }
    if (!replaced) out.push_back(mine);
    return join(out);
}

std::string withoutSlotRecord(std::string_view comment, std::string_view slot) {
    std::vector<std::string> out;
    for (auto line : lines(comment)) {
        auto parsed = parseRecordLine(line);
        if (!parsed || parsed->first != slot) out.emplace_back(line);
    }
    return join(out);
}

SilenceDetector::SilenceDetector(std::chrono::milliseconds limit, Clock::time_point now)
    : limit_(limit), last_heard_(now) {}

void SilenceDetector::heard(Clock::time_point now) {
    last_heard_ = now;
    first_ask_.reset();
}

void SilenceDetector::notReading(Clock::time_point now) { heard(now); }

SilenceDetector::Verdict SilenceDetector::check(Clock::time_point now) {
    if (limit_.count() <= 0) return Verdict::Quiet;
    if (now - last_heard_ >= limit_) return Verdict::Dead;
    if (now - last_heard_ < limit_ / 2) return Verdict::Quiet;
    if (!first_ask_ || now - last_ask_ >= limit_ / 8) {
        if (!first_ask_) first_ask_ = now;
        last_ask_ = now;
        return Verdict::AskForReply;
    }
    return Verdict::Quiet;
}

std::optional<std::string> checkSameSystem(std::string_view previous, std::string_view now) {
    if (previous.empty() || previous == now) return std::nullopt;
    return fmt::format("the server outboxd reconnected to belongs to another database cluster (system identifier "
                       "{}, the first session's was {}): its slot of the same name holds positions of another "
                       "stream, so outboxd stops instead of streaming from it. Point source.postgres.dsn at the "
                       "original cluster or its promoted standby, then restart",
                       now, previous);
}

std::optional<std::string> checkPromotedSlot(std::string_view slot, std::uint32_t previous_timeline,
                                             std::uint32_t timeline, const PromotedSlot& found, Lsn confirmed_here) {
    if (previous_timeline == 0 || timeline <= previous_timeline) return std::nullopt;
    const std::string what = fmt::format("{} (timeline {}, the previous session's was {})", kPromotionRefusal, timeline,
                                         previous_timeline);
    const std::string since = confirmed_here.isValid() ? fmt::format("{}", confirmed_here) : std::string("unknown");
    if (!found.exists) {
        return fmt::format(
            "{}, and it has no replication slot '{}': the slot was not synchronized to this standby before the "
            "promotion (a failover slot needs source.postgres.failover: true, and on the standby "
            "sync_replication_slots = on, hot_standby_feedback = on, primary_slot_name, and a dbname in "
            "primary_conninfo; see docs/operations.md). Events committed after the last LSN outboxd confirmed ({}) "
            "cannot be read here, and a new slot would start at the current WAL position and skip them in silence, "
            "so outboxd does not create one. Reconcile consumers from the outbox table (rows committed since), then "
            "accept the loss once with: outboxd --accept-slot-loss --config <file>",
            what, slot, since);
    }
    if (found.synced != true || found.failover != true) {
        return fmt::format(
            "{}, and its replication slot '{}' is not the one synchronized from the old primary (synced = {}, "
            "failover = {}; both must be true): it was created here by hand or by another client, so its position "
            "says nothing about what outboxd delivered. Reconcile consumers from the outbox table (rows committed "
            "after {}), drop that slot, then accept the loss once with: outboxd --accept-slot-loss --config <file>",
            what, slot, found.synced ? (*found.synced ? "true" : "false") : "unknown",
            found.failover ? (*found.failover ? "true" : "false") : "unknown", since);
    }
    if (confirmed_here.isValid() && found.confirmed_flush > confirmed_here) {
        return fmt::format(
            "{}, and its synchronized replication slot '{}' is at {}, ahead of the last LSN this outboxd confirmed "
            "({}): another client confirmed past events outboxd never acknowledged, which streaming from it would "
            "skip. Make sure only outboxd streams from the slot, reconcile consumers from the outbox table (rows "
            "committed after {}), then restart outboxd",
            what, slot, found.confirmed_flush, confirmed_here, confirmed_here);
    }
    return std::nullopt;
}

}  // namespace outboxd::cdc
