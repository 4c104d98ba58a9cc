#include "common/regex.h"

#include <charconv>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

namespace outboxd::common {

struct Regex::Impl {
    pcre2_code* code = nullptr;
    pcre2_match_data* match = nullptr;
    std::uint32_t groups = 0;
    ~Impl() {
        if (match != nullptr) pcre2_match_data_free(match);
        if (code != nullptr) pcre2_code_free(code);
    }
};

Regex::Regex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

std::expected<Regex, std::string> Regex::compile(std::string_view pattern) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    auto impl = std::make_unique<Impl>();
    impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                               PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &offset, nullptr);
    if (impl->code == nullptr) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(code, buffer, sizeof buffer);
        return std::unexpected(
            fmt::format("not a valid regular expression: {} at character {}", reinterpret_cast<const char*>(buffer),
                        offset + 1));
    }
    pcre2_pattern_info(impl->code, PCRE2_INFO_CAPTURECOUNT, &impl->groups);
    impl->match = pcre2_match_data_create_from_pattern(impl->code, nullptr);
    if (impl->match == nullptr) return std::unexpected("out of memory compiling a regular expression");
    return Regex(std::move(impl));
}

std::optional<int> Regex::group(std::string_view name_or_number) const {
    if (name_or_number.empty()) return std::nullopt;
    if (name_or_number.front() >= '0' && name_or_number.front() <= '9') {
        int n = -1;
        auto [ptr, ec] = std::from_chars(name_or_number.data(), name_or_number.data() + name_or_number.size(), n);
        if (ec != std::errc{} || ptr != name_or_number.data() + name_or_number.size()) return std::nullopt;
        if (n < 0 || static_cast<std::uint32_t>(n) > impl_->groups) return std::nullopt;
        return n;
    }
    const std::string name(name_or_number);
    const int n = pcre2_substring_number_from_name(impl_->code, reinterpret_cast<PCRE2_SPTR>(name.c_str()));
    if (n < 0) return std::nullopt;
    return n;
}

bool Regex::matchWhole(std::string_view subject, std::vector<std::string_view>& groups) {
    groups.clear();
    const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0,
                               impl_->match, nullptr);
    if (rc < 0) return false;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(impl_->match);
    for (std::uint32_t i = 0; i <= impl_->groups; ++i) {
        const PCRE2_SIZE start = ovector[2 * i];
        const PCRE2_SIZE end = ovector[2 * i + 1];
        if (start == PCRE2_UNSET || static_cast<int>(i) >= rc) {
            groups.emplace_back();
        } else {
            groups.push_back(subject.substr(start, end - start));
        }
    }
    return true;
}

}  // namespace outboxd::common
