#include "app/logging.h"

#include <memory>
#include <mutex>
#include <vector>

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

std::string oneLine(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    if (s.find_first_of("\r\n") == std::string_view::npos) return std::string(s);
    std::string out;
    out.reserve(s.size() + 8);
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\n' && s[i] != '\r') {
            out += s[i];
            continue;
        }
        while (i + 1 < s.size() && (s[i + 1] == '\n' || s[i + 1] == '\r' || s[i + 1] == ' ' || s[i + 1] == '\t')) ++i;
        out += "; ";
    }
    return out;
}

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

std::mutex g_process_fields_mutex;
Fields g_process_fields;  // guarded by g_process_fields_mutex
thread_local Fields t_fields;

// %* : the record's message on one line, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string escaped = jsonEscape(oneLine(std::string_view(msg.payload.data(), msg.payload.size())));
        dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

// %& : the structured fields, each as ,"name":"value".
class JsonFieldsFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
        auto append = [&](const Fields& fields) {
            for (const auto& [name, value] : fields) {
                if (value.empty()) continue;
                std::string member = ",\"" + jsonEscape(name) + "\":\"" + jsonEscape(value) + "\"";
                dest.append(member.data(), member.data() + member.size());
            }
        };
        {
            std::lock_guard lock(g_process_fields_mutex);
            append(g_process_fields);
        }
        append(t_fields);
    }
    [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonFieldsFlag>();
    }
};

// %~ : the record's message on one line, for text logs.
class TextMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string line = oneLine(std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(line.data(), line.data() + line.size());
    }
    [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<TextMessageFlag>();
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
        formatter->add_flag<JsonMessageFlag>('*').add_flag<JsonFieldsFlag>('&').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"%&})");
    } else {
        formatter->add_flag<TextMessageFlag>('~').set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %~");
    }
    logger->set_formatter(std::move(formatter));
    logger->set_level(toSpdlog(log.level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
}

void setProcessLogField(std::string name, std::string value) {
    std::lock_guard lock(g_process_fields_mutex);
    for (auto& field : g_process_fields) {
        if (field.first == name) {
            field.second = std::move(value);
            return;
        }
    }
    g_process_fields.emplace_back(std::move(name), std::move(value));
}

LogFields::LogFields(std::initializer_list<std::pair<std::string, std::string>> fields) : count_(fields.size()) {
    for (const auto& field : fields) t_fields.push_back(field);
}

LogFields::~LogFields() { t_fields.resize(t_fields.size() - count_); }

}  // namespace outboxd::app
