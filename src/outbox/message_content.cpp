#include "outbox/message_content.h"

#include <fmt/format.h>
#include <simdjson.h>

namespace outboxd::outbox {

struct MessageContent::Impl {
    simdjson::dom::parser validator;  // the whole document, trailing content included
    simdjson::ondemand::parser parser;  // the members, with the raw text of each value
    std::string padded;  // the content followed by simdjson's padding
};

MessageContent::MessageContent() : impl_(std::make_unique<Impl>()) {}
MessageContent::~MessageContent() = default;
MessageContent::MessageContent(MessageContent&&) noexcept = default;

namespace {

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

std::expected<void, std::string> MessageContent::parse(std::span<const std::byte> content,
                                                       std::span<const std::string> names,
                                                       std::vector<std::optional<std::string>>& values) {
    namespace od = simdjson::ondemand;
    values.assign(names.size(), std::nullopt);
    auto& padded = impl_->padded;
    padded.assign(reinterpret_cast<const char*>(content.data()), content.size());
    const std::size_t length = padded.size();
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    auto fail = [](simdjson::error_code e) {
        return std::unexpected(fmt::format("the content is not a JSON object: {}", simdjson::error_message(e)));
    };
    simdjson::dom::element root;
    if (auto e = impl_->validator.parse(padded.data(), length, false).get(root)) return fail(e);
    if (!root.is_object()) {
        return std::unexpected(std::string("the content is not a JSON object: it is another JSON value"));
    }
    od::document doc;
    if (auto e = impl_->parser.iterate(padded.data(), length, padded.size()).get(doc)) return fail(e);
    od::object object;
    if (auto e = doc.get_object().get(object)) return fail(e);
    for (auto field : object) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return fail(e);
        std::size_t index = names.size();
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (names[i] == key) {
                index = i;
                break;
            }
        }
        od::value value;
        if (auto e = field.value().get(value)) return fail(e);
        od::json_type type;
        if (auto e = value.type().get(type)) return fail(e);
        std::optional<std::string> text;
        switch (type) {
            case od::json_type::string: {
                std::string_view s;
                if (auto e = value.get_string().get(s)) return fail(e);
                text.emplace(s);
                break;
            }
            case od::json_type::null: {
                bool is_null = false;
                if (auto e = value.is_null().get(is_null)) return fail(e);
                break;
            }
            case od::json_type::object: {
                od::object inner;
                std::string_view raw;
                if (auto e = value.get_object().get(inner)) return fail(e);
                if (auto e = inner.raw_json().get(raw)) return fail(e);
                text.emplace(trimmed(raw));
                break;
            }
            case od::json_type::array: {
                od::array inner;
                std::string_view raw;
                if (auto e = value.get_array().get(inner)) return fail(e);
                if (auto e = inner.raw_json().get(raw)) return fail(e);
                text.emplace(trimmed(raw));
                break;
            }
            case od::json_type::number: {
                double unused = 0;
                const std::string_view raw = trimmed(value.raw_json_token());
                if (auto e = value.get_double().get(unused); e && e != simdjson::NUMBER_OUT_OF_RANGE) {
                    return fail(e);
                }
                text.emplace(raw);
                break;
            }
            case od::json_type::boolean: {
                bool b = false;
                if (auto e = value.get_bool().get(b)) return fail(e);
                text.emplace(b ? "true" : "false");
                break;
            }
        }
        if (index < names.size()) values[index] = std::move(text);
    }
    return {};
}

}  // namespace outboxd::outbox
