#include "app/payload_set.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace outboxd::app {

std::expected<std::unique_ptr<outbox::payload::TypedPayloads>, std::string> PayloadSet::read(
    const config::ProtobufPayloadConfig& pb, FileId& id) {
    struct stat st {};
    if (::stat(pb.descriptor_set.c_str(), &st) != 0) {
        return std::unexpected(fmt::format("cannot read '{}': {}", pb.descriptor_set, std::strerror(errno)));
    }
    id = FileId{st.st_ino, st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    std::ifstream in(pb.descriptor_set, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in.good() && !in.eof()) {
        return std::unexpected(fmt::format("cannot read '{}'", pb.descriptor_set));
    }
    outbox::payload::TypedPayloadOptions options;
    options.types = pb.types;
    options.ignore_unknown_fields = pb.unknown_fields == config::UnknownFields::Ignore;
    return outbox::payload::TypedPayloads::load(bytes.str(), pb.descriptor_set, options);
}

std::expected<std::unique_ptr<PayloadSet>, std::string> PayloadSet::load(const config::Config& config,
                                                                         std::string_view config_path) {
    std::unique_ptr<PayloadSet> set(new PayloadSet(config));
    const auto& pb = config.payload.protobuf;
    if (pb.descriptor_set.empty()) return set;
    auto loaded = read(pb, set->loaded_id_);
    if (!loaded) {
        return std::unexpected(
            fmt::format("{}:{}:{}: payload.protobuf.descriptor_set: {}", config_path, pb.line, pb.column, loaded.error()));
    }
    set->current_ = std::move(*loaded);
    set->last_check_ = std::chrono::steady_clock::now();
    return set;
}

bool PayloadSet::maybeReload(bool forced, metrics::Metrics& metrics) {
    const auto& pb = config_.payload.protobuf;
    if (pb.descriptor_set.empty()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (!forced) {
        if (now - last_check_ < std::chrono::seconds(1)) return false;
        last_check_ = now;
        struct stat st {};
        if (::stat(pb.descriptor_set.c_str(), &st) != 0) return false;  // being replaced: look again later
        const FileId id{st.st_ino, st.st_size,
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
        if (id == loaded_id_) return false;
    }
    FileId id;
    auto loaded = read(pb, id);
    if (!loaded) {
        loaded_id_ = id;  // do not retry the same broken file every second; a change or SIGHUP retries
        metrics.payloadReload(false);
        spdlog::error("payload.protobuf.descriptor_set: reload failed, the previous set stays in use: {}",
                      loaded.error());
        return false;
    }
    loaded_id_ = id;
    current_ = std::move(*loaded);
    metrics.payloadReload(true);
    spdlog::info("payload.protobuf.descriptor_set: reloaded {} ({} event types){}", pb.descriptor_set,
                 current_->typeCount(), forced ? " on SIGHUP" : " after the file changed");
    return true;
}

}  // namespace outboxd::app
