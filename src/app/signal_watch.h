#pragma once
// Acts on the flags main's signal handlers set, from an ordinary thread where logging is safe:
// logs each SIGHUP (the relay reloads the typed-payload set; nothing else is reloadable), and once a stop was requested
// ends the process through `on_deadline` if it is still running `deadline` later, so a shutdown
// that hangs cannot make SIGTERM a no-op.
// Owns one thread: the constructor starts it, the destructor stops and joins it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace outboxd::app {

class SignalWatch {
public:
    SignalWatch(const std::atomic<bool>& stop_requested, std::atomic<int>& hangups, std::chrono::milliseconds deadline,
                std::function<void()> on_deadline);
    ~SignalWatch();

    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

private:
    void run();

    const std::atomic<bool>& stop_requested_;
    std::atomic<int>& hangups_;
    const std::chrono::milliseconds deadline_;
    std::function<void()> on_deadline_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool finished_ = false;  // guarded by mutex_
    std::thread thread_;
};

}  // namespace outboxd::app
