// libFuzzer target: typed-payload conversion (JSON text or bytea bytes -> a message of the test
// descriptor set, tests/data/payload/events_test.proto). The first byte picks the type, the
// form and the unknown-field policy; the rest is the payload. Nothing may crash or leak, and
// a conversion that succeeds must give bytes that convert again to themselves.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "outbox/payload/typed_payloads.h"

using outboxd::outbox::payload::PayloadForm;
using outboxd::outbox::payload::TypedPayloadOptions;
using outboxd::outbox::payload::TypedPayloads;

namespace {

std::unique_ptr<TypedPayloads> loadSet(bool ignore_unknown) {
    std::ifstream in(OUTBOXD_FUZZ_DESCRIPTORS, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    TypedPayloadOptions options;
    options.types = {{"Everything", "outboxd.test.v1.Everything"}, {"UserRegistered", "outboxd.test.v1.UserRegistered"}};
    options.ignore_unknown_fields = ignore_unknown;
    auto set = TypedPayloads::load(bytes.str(), OUTBOXD_FUZZ_DESCRIPTORS, options);
    if (!set) std::abort();
    return std::move(*set);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in string fields is logged, not fatal
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static auto strict = loadSet(false);
    static auto lenient = loadSet(true);
    if (size == 0) return 0;
    const auto selector = data[0];
    auto& set = (selector & 4) ? *lenient : *strict;
    const char* type = (selector & 1) ? "UserRegistered" : "Everything";
    const auto form = (selector & 2) ? PayloadForm::Binary : PayloadForm::JsonText;
    const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string out;
    if (!set.convert(type, form, payload, out)) return 0;
    std::string again;
    if (!set.convert(type, PayloadForm::Binary, out, again)) std::abort();
    if (form == PayloadForm::Binary && again != out) std::abort();
    return 0;
}
