#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <google/protobuf/descriptor.pb.h>

#include "outbox/payload/typed_payloads.h"

using outboxd::outbox::payload::PayloadForm;
using outboxd::outbox::payload::TypedPayloadOptions;
using outboxd::outbox::payload::TypedPayloads;

namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string descriptors() { return readFile(OUTBOXD_TEST_DESCRIPTORS); }

std::string caseFile(const std::string& name, const std::string& ext) {
    return readFile(std::string(OUTBOXD_TEST_PROTO_DIR) + "/cases/" + name + ext);
}

TypedPayloadOptions options(bool ignore_unknown = false) {
    TypedPayloadOptions o;
    o.types = {{"Everything", "outboxd.test.v1.Everything"}, {"UserRegistered", "outboxd.test.v1.UserRegistered"}};
    o.ignore_unknown_fields = ignore_unknown;
    return o;
}

std::unique_ptr<TypedPayloads> load(bool ignore_unknown = false) {
    auto set = TypedPayloads::load(descriptors(), "events_test.binpb", options(ignore_unknown));
    REQUIRE(set.has_value());
    return std::move(*set);
}

std::string hex(std::string_view bytes) {
    std::string out;
    char buf[3];
    for (unsigned char c : bytes) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        out += buf;
    }
    return out;
}

}  // namespace

TEST_CASE("JSON payloads convert to the bytes protoc --encode gives for the same message", "[payload]") {
    // cases/NAME.json is the payload; cases/NAME.bin is protoc --encode of cases/NAME.txtpb
    // (tests/data/payload/make-golden.sh).
    const auto [name, type] = GENERATE(table<std::string, std::string>({
        {"scalars", "Everything"},
        {"original_names", "Everything"},
        {"nested", "Everything"},
        {"well_known", "Everything"},
        {"user_registered", "UserRegistered"},
    }));
    CAPTURE(name);
    auto set = load();
    std::string out;
    const auto converted = set->convert(type, PayloadForm::JsonText, caseFile(name, ".json"), out);
    INFO((converted ? std::string() : converted.error().message));
    REQUIRE(converted.has_value());
    CHECK(hex(out) == hex(caseFile(name, ".bin")));
}

TEST_CASE("the reused message carries nothing from one event to the next", "[payload]") {
    auto set = load();
    std::string first;
    std::string second;
    REQUIRE(set->convert("Everything", PayloadForm::JsonText, caseFile("nested", ".json"), first));
    REQUIRE(set->convert("Everything", PayloadForm::JsonText, R"({"i32": 1})", second));
    CHECK(hex(second) == "0801");
}

TEST_CASE("unknown JSON fields fail or are dropped as unknown_fields says", "[payload]") {
    const std::string json = R"({"userId": "u-1", "favouriteColour": "red"})";
    std::string out;
    auto strict = load(false);
    const auto refused = strict->convert("UserRegistered", PayloadForm::JsonText, json, out);
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::Contains("favouriteColour"));
    CHECK_THAT(refused.error().message, Catch::Contains("outboxd.test.v1.UserRegistered"));

    auto lenient = load(true);
    REQUIRE(lenient->convert("UserRegistered", PayloadForm::JsonText, json, out));
    CHECK(hex(out) == "0a03752d31");
}

TEST_CASE("payloads that are not the message are refused", "[payload]") {
    auto set = load();
    std::string out;
    const auto [json, why] = GENERATE(table<std::string, std::string>({
        {"not json", "malformed"},
        {R"({"i32": "x"})", "string for int32"},
        {R"({"i32": 1.5})", "fraction for int32"},
        {R"({"status": "STATUS_NOPE"})", "unknown enum name"},
        {R"({"at": "yesterday"})", "bad timestamp"},
        {R"({"ttl": "1.5"})", "duration without s"},
        {R"({"blob": "***"})", "bad base64"},
        {R"({"u32": -1})", "negative uint32"},
        {R"([1, 2])", "array for a message"},
    }));
    CAPTURE(why);
    CHECK_FALSE(set->convert("Everything", PayloadForm::JsonText, json, out).has_value());
}

TEST_CASE("a bytea payload of a typed event must be that message and is kept as it is", "[payload]") {
    auto set = load();
    std::string out;
    const auto golden = caseFile("user_registered", ".bin");
    REQUIRE(set->convert("UserRegistered", PayloadForm::Binary, golden, out));
    CHECK(out == golden);

    // Truncated: the last field's length runs past the end.
    const auto truncated = set->convert("UserRegistered", PayloadForm::Binary, golden.substr(0, golden.size() - 3), out);
    REQUIRE_FALSE(truncated.has_value());
    CHECK_THAT(truncated.error().message, Catch::Contains("not a serialized outboxd.test.v1.UserRegistered"));

    // Field 9 is not part of UserRegistered: refused with unknown_fields: fail, kept with ignore.
    const std::string unknown = golden + std::string("\x48\x01", 2);
    CHECK_FALSE(set->convert("UserRegistered", PayloadForm::Binary, unknown, out).has_value());
    auto lenient = load(true);
    REQUIRE(lenient->convert("UserRegistered", PayloadForm::Binary, unknown, out));
    CHECK(out == unknown);
}

TEST_CASE("content type names the message", "[payload]") {
    CHECK(TypedPayloads::contentType("playball.auth.v1.UserRegistered") ==
          "application/x-protobuf; messageType=playball.auth.v1.UserRegistered");
    auto set = load();
    REQUIRE(set->messageFor("UserRegistered") != nullptr);
    CHECK(*set->messageFor("UserRegistered") == "outboxd.test.v1.UserRegistered");
    CHECK(set->messageFor("UserDeleted") == nullptr);
    CHECK(set->typeCount() == 2);
}

TEST_CASE("descriptor set errors name the file, the type and what to do", "[payload]") {
    SECTION("not a descriptor set") {
        const auto r = TypedPayloads::load("\xff\xff\xff", "bad.binpb", options());
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error(), Catch::StartsWith("bad.binpb: not a FileDescriptorSet"));
    }
    SECTION("a type the set does not define") {
        auto o = options();
        o.types["UserDeleted"] = "outboxd.test.v1.UserDeleted";
        const auto r = TypedPayloads::load(descriptors(), "events.binpb", o);
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error(), Catch::Contains("event type 'UserDeleted'"));
        CHECK_THAT(r.error(), Catch::Contains("outboxd.test.v1.UserDeleted"));
        CHECK_THAT(r.error(), Catch::StartsWith("events.binpb: "));
    }
    SECTION("an import the set does not hold (made without --include_imports)") {
        google::protobuf::FileDescriptorSet set;
        REQUIRE(set.ParseFromString(descriptors()));
        google::protobuf::FileDescriptorSet without;
        for (const auto& file : set.file()) {
            if (file.name() != "google/protobuf/timestamp.proto") *without.add_file() = file;
        }
        const auto r = TypedPayloads::load(without.SerializeAsString(), "events.binpb", options());
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error(), Catch::Contains("imports google/protobuf/timestamp.proto"));
        CHECK_THAT(r.error(), Catch::Contains("--include_imports"));
    }
    SECTION("the files may come in any order") {
        google::protobuf::FileDescriptorSet set;
        REQUIRE(set.ParseFromString(descriptors()));
        google::protobuf::FileDescriptorSet reversed;
        for (int i = set.file_size() - 1; i >= 0; --i) *reversed.add_file() = set.file(i);
        CHECK(TypedPayloads::load(reversed.SerializeAsString(), "events.binpb", options()).has_value());
    }
}
