#include "outbox/payload/typed_payloads.h"

#include <set>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

namespace outboxd::outbox::payload {

namespace pb = google::protobuf;

namespace {

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com";

class CollectErrors final : public pb::DescriptorPool::ErrorCollector {
public:
    void AddError(const std::string& filename, const std::string& element_name, const pb::Message*,
                  ErrorLocation, const std::string& message) override {
        if (!text.empty()) text += "; ";
        text += fmt::format("{}: {}: {}", filename, element_name, message);
    }
    std::string text;
};

// True when `message` or any message inside it holds fields its descriptor does not know.
bool hasUnknownFields(const pb::Message& message) {
    const auto* reflection = message.GetReflection();
    if (!reflection->GetUnknownFields(message).empty()) return true;
    std::vector<const pb::FieldDescriptor*> fields;
    reflection->ListFields(message, &fields);
    for (const auto* field : fields) {
        if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
        if (field->is_repeated()) {
            const int n = reflection->FieldSize(message, field);
            for (int i = 0; i < n; ++i) {
                if (hasUnknownFields(reflection->GetRepeatedMessage(message, field, i))) return true;
            }
        } else if (hasUnknownFields(reflection->GetMessage(message, field))) {
            return true;
        }
    }
    return false;
}

}  // namespace

struct TypedPayloads::Impl {
    pb::DescriptorPool pool;
    pb::DynamicMessageFactory factory{&pool};
    std::unique_ptr<pb::util::TypeResolver> resolver;
    pb::util::JsonParseOptions json_options;

    struct Type {
        std::string message_name;
        std::string type_url;
        std::unique_ptr<pb::Message> scratch;  // reused from event to event
    };
    std::map<std::string, Type, std::less<>> types;
    std::string binary;  // the JSON parser's output before canonical re-serialization
};

TypedPayloads::TypedPayloads(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TypedPayloads::~TypedPayloads() = default;

std::expected<std::unique_ptr<TypedPayloads>, std::string> TypedPayloads::load(
    std::string_view bytes, std::string_view origin, const TypedPayloadOptions& options) {
    pb::FileDescriptorSet set;
    if (!set.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        return std::unexpected(fmt::format(
            "{}: not a FileDescriptorSet (make it with protoc --include_imports --descriptor_set_out=FILE)",
            origin));
    }
    auto impl = std::make_unique<Impl>();

    // Files are built once every file they import is built: the set is in any order.
    std::map<std::string, const pb::FileDescriptorProto*> pending;
    for (const auto& file : set.file()) pending.emplace(file.name(), &file);
    std::set<std::string> built;
    while (!pending.empty()) {
        bool progress = false;
        for (auto it = pending.begin(); it != pending.end();) {
            const auto& proto = *it->second;
            bool ready = true;
            for (const auto& dep : proto.dependency()) {
                if (!built.contains(dep)) {
                    ready = false;
                    break;
                }
            }
            if (!ready) {
                ++it;
                continue;
            }
            CollectErrors errors;
            if (impl->pool.BuildFileCollectingErrors(proto, &errors) == nullptr) {
                return std::unexpected(fmt::format("{}: {} does not build: {}", origin, proto.name(), errors.text));
            }
            built.insert(proto.name());
            it = pending.erase(it);
            progress = true;
        }
        if (!progress) {
            const auto& [name, proto] = *pending.begin();
            std::string missing;
            for (const auto& dep : proto->dependency()) {
                if (built.contains(dep)) continue;
                if (!pending.contains(dep)) {
                    missing = dep;
                    break;
                }
            }
            if (missing.empty()) {
                return std::unexpected(fmt::format("{}: {} is part of an import cycle", origin, name));
            }
            return std::unexpected(fmt::format(
                "{}: {} imports {}, which the set does not hold (make the set with protoc --include_imports)",
                origin, name, missing));
        }
    }

    impl->resolver.reset(pb::util::NewTypeResolverForDescriptorPool(std::string(kTypeUrlPrefix), &impl->pool));
    impl->json_options.ignore_unknown_fields = options.ignore_unknown_fields;
    for (const auto& [event_type, message_name] : options.types) {
        const auto* descriptor = impl->pool.FindMessageTypeByName(message_name);
        if (descriptor == nullptr) {
            return std::unexpected(fmt::format("{}: event type '{}' maps to message '{}', which the set does not define",
                                               origin, event_type, message_name));
        }
        Impl::Type type;
        type.message_name = message_name;
        type.type_url = fmt::format("{}/{}", kTypeUrlPrefix, message_name);
        type.scratch.reset(impl->factory.GetPrototype(descriptor)->New());
        impl->types.emplace(event_type, std::move(type));
    }
    return std::unique_ptr<TypedPayloads>(new TypedPayloads(std::move(impl)));
}

const std::string* TypedPayloads::messageFor(std::string_view event_type) const {
    const auto it = impl_->types.find(event_type);
    return it == impl_->types.end() ? nullptr : &it->second.message_name;
}

std::string TypedPayloads::contentType(std::string_view message_name) {
    return fmt::format("application/x-protobuf; messageType={}", message_name);
}

std::size_t TypedPayloads::typeCount() const { return impl_->types.size(); }

std::expected<void, ConvertError> TypedPayloads::convert(std::string_view event_type, PayloadForm form,
                                                         std::string_view payload, std::string& out) {
    const auto it = impl_->types.find(event_type);
    if (it == impl_->types.end()) {
        return std::unexpected(ConvertError{fmt::format("event type '{}' has no message type", event_type)});
    }
    auto& type = it->second;
    auto& message = *type.scratch;
    message.Clear();
    if (form == PayloadForm::JsonText) {
        impl_->binary.clear();
        const auto status = pb::util::JsonToBinaryString(impl_->resolver.get(), type.type_url,
                                                         pb::StringPiece(payload.data(), payload.size()),
                                                         &impl_->binary, impl_->json_options);
        if (!status.ok()) {
            return std::unexpected(ConvertError{
                fmt::format("payload is not JSON for {}: {}", type.message_name, std::string(status.message()))});
        }
        if (!message.ParseFromString(impl_->binary)) {
            return std::unexpected(ConvertError{fmt::format("payload does not convert to {}", type.message_name)});
        }
    } else {
        if (!message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
            return std::unexpected(
                ConvertError{fmt::format("bytea payload is not a serialized {}", type.message_name)});
        }
        if (!impl_->json_options.ignore_unknown_fields && hasUnknownFields(message)) {
            return std::unexpected(ConvertError{fmt::format(
                "bytea payload holds fields that {} does not define (unknown_fields: fail)", type.message_name)});
        }
        out.assign(payload.data(), payload.size());
        return {};
    }
    // Deterministic: the same payload always gives the same bytes (map entries sorted by key).
    out.clear();
    {
        pb::io::StringOutputStream stream(&out);
        pb::io::CodedOutputStream coded(&stream);
        coded.SetSerializationDeterministic(true);
        if (!message.SerializeToCodedStream(&coded)) {
            return std::unexpected(ConvertError{fmt::format("{} does not serialize", type.message_name)});
        }
    }
    return {};
}

}  // namespace outboxd::outbox::payload
