#pragma once
// The content of a logical decoding message (pg_logical_emit_message) that is an outbox event: a
// JSON object whose members carry what an outbox row's columns carry, under the same configured
// names. Pure; any thread, one instance per thread (it keeps its parser and buffers).

#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::outbox {

class MessageContent {
public:
    MessageContent();
    ~MessageContent();
    MessageContent(MessageContent&&) noexcept;
    MessageContent(const MessageContent&) = delete;
    MessageContent& operator=(const MessageContent&) = delete;

    // Fills `values[i]` with the member named `names[i]`: a string's unescaped text, the JSON text
    // of any other value exactly as written (numbers, booleans, objects, arrays), nullopt for a
    // null or absent member. Members not named are ignored; of a member named twice the last one
    // counts. Fails, saying why, on content that is not one JSON object.
    [[nodiscard]] std::expected<void, std::string> parse(std::span<const std::byte> content,
                                                         std::span<const std::string> names,
                                                         std::vector<std::optional<std::string>>& values);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace outboxd::outbox
