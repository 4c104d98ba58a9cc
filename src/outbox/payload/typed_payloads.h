#pragma once
// Typed event payloads: a FileDescriptorSet (protoc --include_imports --descriptor_set_out) and
// a map from the outbox row's event type to a message's full name. A typed event's JSON payload
// is parsed with protobuf's own JSON mapping into that message and published as its binary
// form; a bytea payload must already be that message.
//
// Owns the descriptor pool, the dynamic message factory and one reusable message per type
// (cleared before each conversion, so its buffers are kept from event to event). Pure: no I/O
// apart from reading nothing at all: the caller hands it the file's bytes. One instance is used
// by the relay's event-loop thread only; a reload builds a new instance and swaps it in.

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace outboxd::outbox::payload {

struct TypedPayloadOptions {
    // Event type (the `type` column) -> message full name, e.g. "playball.auth.v1.UserRegistered".
    std::map<std::string, std::string> types;
    // true: a JSON field the message does not have is dropped; false: the payload is refused.
    bool ignore_unknown_fields = false;
};

// How the payload arrived: the text of a json/jsonb/text column, or the bytes of a bytea.
enum class PayloadForm { JsonText, Binary };

struct ConvertError {
    std::string message;  // what was wrong, without the payload itself
};

class TypedPayloads {
public:
    // Builds the pool from a serialized FileDescriptorSet. `origin` names the file in errors.
    // Fails when the set does not parse, a file's import is missing from the set, or a listed
    // message name does not resolve (naming the event type and the file).
    [[nodiscard]] static std::expected<std::unique_ptr<TypedPayloads>, std::string> load(
        std::string_view descriptor_set_bytes, std::string_view origin, const TypedPayloadOptions& options);

    ~TypedPayloads();
    TypedPayloads(const TypedPayloads&) = delete;
    TypedPayloads& operator=(const TypedPayloads&) = delete;

    // The message full name for an event type, or nullptr when the type is not listed.
    [[nodiscard]] const std::string* messageFor(std::string_view event_type) const;

    // "application/x-protobuf; messageType=<full name>".
    [[nodiscard]] static std::string contentType(std::string_view message_name);

    // Converts the payload of an event whose type is listed into the binary message, written
    // to `out` (replaced). The type must be listed (messageFor() != nullptr).
    [[nodiscard]] std::expected<void, ConvertError> convert(std::string_view event_type, PayloadForm form,
                                                            std::string_view payload, std::string& out);

    [[nodiscard]] std::size_t typeCount() const;

private:
    struct Impl;
    explicit TypedPayloads(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace outboxd::outbox::payload
