#pragma once
// JSON text for the values outboxd writes itself: the JSON object of routing.value: payload with
// envelope fields, JSON-encoded headers (routing.header_encoding: json), an expanded payload.
// Written the way Kafka Connect's JsonConverter (schemas.enable=false) writes a value: compact,
// strings escaped like Jackson (", \, control characters; other characters as UTF-8).
// Pure: no I/O. A JsonCompactor is used by one thread (it holds a parser).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace outboxd::outbox {

// Appends `text` as a JSON string ("..." with escapes).
void appendJsonString(std::string& out, std::string_view text);

// Appends `bytes` as a JSON string of their standard base64 (RFC 4648, with padding), as
// JsonConverter writes a bytes value.
void appendJsonBase64(std::string& out, std::string_view bytes);

// Appends the JSON value of a column given as PostgreSQL's text output, by the column's type:
// int2, int4, int8 and oid as a number; float4 and float8 as a number when finite (NaN and the
// infinities as strings); bool ('t'/'f') as true/false; bytea ("\x..." hex) as base64; any other
// type (text, uuid, json, jsonb, numeric, timestamps...) as a JSON string of its text.
void appendColumnJson(std::string& out, std::uint32_t type_oid, std::string_view text);

// True for the integer types whose text is written as a JSON number.
[[nodiscard]] bool isIntegerType(std::uint32_t type_oid);

class JsonCompactor {
public:
    JsonCompactor();
    ~JsonCompactor();
    JsonCompactor(JsonCompactor&&) noexcept;
    JsonCompactor& operator=(JsonCompactor&&) noexcept;

    // Appends `text` without the whitespace between tokens, when it is one JSON document;
    // returns false (and appends nothing) when it is not.
    [[nodiscard]] bool append(std::string& out, std::string_view text);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace outboxd::outbox
