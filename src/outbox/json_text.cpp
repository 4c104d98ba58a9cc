#include "outbox/json_text.h"

#include <array>
#include <charconv>

#include <simdjson.h>

namespace outboxd::outbox {

namespace {

// PostgreSQL type OIDs (pg_type.dat).
constexpr std::uint32_t kBool = 16;
constexpr std::uint32_t kBytea = 17;
constexpr std::uint32_t kInt8 = 20;
constexpr std::uint32_t kInt2 = 21;
constexpr std::uint32_t kInt4 = 23;
constexpr std::uint32_t kOid = 26;
constexpr std::uint32_t kFloat4 = 700;
constexpr std::uint32_t kFloat8 = 701;

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
    static constexpr std::string_view kHex = "0123456789abcdef";
    out.push_back('"');
    for (const char c : text) {
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out.append("\\u00");
                    out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xf]);
                    out.push_back(kHex[static_cast<unsigned char>(c) & 0xf]);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

void appendJsonBase64(std::string& out, std::string_view bytes) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push_back('"');
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(n >> shift) & 0x3f]);
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out.push_back(kAlphabet[(n >> 18) & 0x3f]);
        out.push_back(kAlphabet[(n >> 12) & 0x3f]);
        out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 0x3f] : '=');
        out.push_back('=');
    }
    out.push_back('"');
}

bool isIntegerType(std::uint32_t type_oid) {
    return type_oid == kInt2 || type_oid == kInt4 || type_oid == kInt8 || type_oid == kOid;
}

void appendColumnJson(std::string& out, std::uint32_t type_oid, std::string_view text) {
    if (isIntegerType(type_oid)) {
        std::int64_t n = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), n);
        if (r.ec == std::errc{} && r.ptr == text.data() + text.size()) {
            out.append(text);
            return;
        }
    } else if (type_oid == kFloat4 || type_oid == kFloat8) {
        if (text != "NaN" && text != "Infinity" && text != "-Infinity") {
            out.append(text);
            return;
        }
    } else if (type_oid == kBool) {
        out.append(text == "t" ? "true" : "false");
        return;
    } else if (type_oid == kBytea && text.size() >= 2 && text[0] == '\\' && text[1] == 'x' && text.size() % 2 == 0) {
        std::string raw;
        raw.reserve(text.size() / 2 - 1);
        bool ok = true;
        for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
            const int hi = hexValue(text[i]);
            const int lo = hexValue(text[i + 1]);
            if (hi < 0 || lo < 0) {
                ok = false;
                break;
            }
            raw.push_back(static_cast<char>((hi << 4) | lo));
        }
        if (ok) {
            appendJsonBase64(out, raw);
            return;
        }
    }
    appendJsonString(out, text);
}

struct JsonCompactor::Impl {
    simdjson::dom::parser parser;
    std::string padded;
};

JsonCompactor::JsonCompactor() : impl_(std::make_unique<Impl>()) {}
JsonCompactor::~JsonCompactor() = default;
JsonCompactor::JsonCompactor(JsonCompactor&&) noexcept = default;
JsonCompactor& JsonCompactor::operator=(JsonCompactor&&) noexcept = default;

bool JsonCompactor::append(std::string& out, std::string_view text) {
    impl_->padded.assign(text);
    impl_->padded.append(simdjson::SIMDJSON_PADDING, '\0');
    simdjson::dom::element doc;
    if (impl_->parser.parse(impl_->padded.data(), text.size(), false).get(doc) != simdjson::SUCCESS) {
        return false;
    }
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            out.push_back(c);
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        if (c == '"') in_string = true;
        out.push_back(c);
    }
    return true;
}

}  // namespace outboxd::outbox
