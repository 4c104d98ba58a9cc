#include "app/logging.h"

#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace outboxd::app {

std::string jsonEscape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    static constexpr char kHex[] = "0123456789abcdef";
                    out += "\\u00";
                    out += kHex[(c >> 4) & 0xf];
                    out += kHex[c & 0xf];
                } else {
                    out += c;
                }
        }
    }
    return out;
}

namespace {

// %* : the record's message, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string escaped = jsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

spdlog::level::level_enum toSpdlog(config::LogLevel level) {
    switch (level) {
        case config::LogLevel::Trace: return spdlog::level::trace;
        case config::LogLevel::Debug: return spdlog::level::debug;
        case config::LogLevel::Info: return spdlog::level::info;
        case config::LogLevel::Warn: return spdlog::level::warn;
        case config::LogLevel::Error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

}  // namespace

void setupLogging(const config::LogConfig& log) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("outboxd", sink);
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    if (log.format == config::LogFormat::Json) {
        formatter->add_flag<JsonMessageFlag>('*').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"})");
    } else {
        formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v");
    }
    logger->set_formatter(std::move(formatter));
    logger->set_level(toSpdlog(log.level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
}

}  // namespace outboxd::app
