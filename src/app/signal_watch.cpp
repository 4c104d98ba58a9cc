#include "app/signal_watch.h"

#include <optional>

#include <spdlog/spdlog.h>

namespace outboxd::app {

SignalWatch::SignalWatch(const std::atomic<bool>& stop_requested, std::atomic<int>& hangups,
                         std::chrono::milliseconds deadline, std::function<void()> on_deadline)
    : stop_requested_(stop_requested),
      hangups_(hangups),
      deadline_(deadline),
      on_deadline_(std::move(on_deadline)),
      thread_([this] { run(); }) {}

SignalWatch::~SignalWatch() {
    {
        std::lock_guard lock(mutex_);
        finished_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void SignalWatch::run() {
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> stop_seen;
    std::unique_lock lock(mutex_);
    while (!finished_) {
        wake_.wait_for(lock, std::chrono::milliseconds(50));
        if (finished_) return;
        if (hangups_.exchange(0) > 0) {
            spdlog::info("SIGHUP received: only payload.protobuf.descriptor_set is reloaded (when set); restart "
                         "outboxd to apply any other change of the configuration");
        }
        if (!stop_seen && stop_requested_.load()) stop_seen = Clock::now();
        if (stop_seen && Clock::now() - *stop_seen >= deadline_) {
            spdlog::error("still running {} ms after the stop request: exiting now (nothing past the last confirmed "
                          "LSN is lost; it is sent again on the next start)",
                          deadline_.count());
            on_deadline_();
            return;
        }
    }
}

}  // namespace outboxd::app
