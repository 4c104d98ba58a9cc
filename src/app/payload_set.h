#pragma once
// The typed-payload set of payload.protobuf, as the relay uses it: loaded at start (and by
// --check-config), reloaded on SIGHUP and when the descriptor set file changes (a mounted
// ConfigMap is replaced in place). A set that fails to load keeps the old one in use and says
// why; each reload is counted in outboxd_payload_reloads_total{result}.
//
// Owns the current set. Used by the relay's event-loop thread; the reload request flag is set
// by the signal handler.

#include <atomic>
#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "config/config.h"
#include "metrics/metrics.h"
#include "outbox/payload/typed_payloads.h"

namespace outboxd::app {

class PayloadSet {
public:
    // Loads the set named by config.payload.protobuf. Without a descriptor_set, the set is
    // empty (current() is nullptr). An error reads "CONFIG:LINE:COL: payload.protobuf.descriptor_set: ...".
    [[nodiscard]] static std::expected<std::unique_ptr<PayloadSet>, std::string> load(const config::Config& config,
                                                                                      std::string_view config_path);

    // The set in use, or nullptr when payloads are not typed.
    [[nodiscard]] outbox::payload::TypedPayloads* current() const { return current_.get(); }

    // Reloads when `forced` (SIGHUP) or when the file looks changed (checked at most once a
    // second). Returns true when a new set is in use: the caller hands current() on.
    bool maybeReload(bool forced, metrics::Metrics& metrics);

private:
    struct FileId {
        ino_t inode = 0;
        off_t size = 0;
        std::int64_t mtime_ns = 0;
        auto operator<=>(const FileId&) const = default;
    };
    PayloadSet(const config::Config& config) : config_(config) {}
    static std::expected<std::unique_ptr<outbox::payload::TypedPayloads>, std::string> read(
        const config::ProtobufPayloadConfig& pb, FileId& id);

    const config::Config& config_;
    std::unique_ptr<outbox::payload::TypedPayloads> current_;
    FileId loaded_id_;
    std::chrono::steady_clock::time_point last_check_{};
};

}  // namespace outboxd::app
