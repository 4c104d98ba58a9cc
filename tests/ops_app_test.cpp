// The operator side of the app module: one-line log messages, structured JSON fields, and the
// signal watch (SIGHUP ignored with a line, a hard exit deadline after a stop request).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "app/logging.h"
#include "app/signal_watch.h"

using namespace outboxd;
using namespace std::chrono_literals;

namespace {

// Runs `body` with spdlog writing through setupLogging to a temporary file standing in for stderr;
// returns what was written.
template <typename Body>
std::string captureStderr(config::LogFormat format, Body body) {
    std::fflush(stderr);
    char path[] = "/tmp/outboxd-log-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    int saved = ::dup(2);
    ::dup2(fd, 2);
    {
        config::LogConfig log;
        log.format = format;
        log.level = config::LogLevel::Info;
        app::setupLogging(log);
        body();
        spdlog::default_logger()->flush();
    }
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::string text;
    char buf[4096];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    ::unlink(path);
    return text;
}

std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("multi-line messages are logged on one line", "[app]") {
    CHECK(app::oneLine("ERROR:  permission denied\nDETAIL:  role lacks REPLICATION\n") ==
          "ERROR:  permission denied; DETAIL:  role lacks REPLICATION");
    CHECK(app::oneLine("server closed the connection unexpectedly\n\tThis probably means\n") ==
          "server closed the connection unexpectedly; This probably means");
    CHECK(app::oneLine("plain") == "plain");
    const std::string libpq = "FATAL:  no such database\nHINT:  create it\n";
    auto text = captureStderr(config::LogFormat::Text, [&] { spdlog::warn("connect failed: {}", libpq); });
    CHECK(lines(text) == 1);
    CHECK(text.find("no such database; HINT:  create it") != std::string::npos);
    auto json = captureStderr(config::LogFormat::Json, [&] { spdlog::warn("connect failed: {}", libpq); });
    CHECK(lines(json) == 1);
    CHECK(json.find("\\n") == std::string::npos);
}

TEST_CASE("JSON log lines carry structured fields", "[app]") {
    app::setProcessLogField("slot", "outboxd_slot");
    auto json = captureStderr(config::LogFormat::Json, [] {
        app::LogFields fields{{"error_kind", "slot_in_use"}, {"lsn", "0/16B3748"}, {"table", ""}};
        spdlog::info("with fields");
    });
    CHECK(json.find(R"("msg":"with fields","slot":"outboxd_slot","error_kind":"slot_in_use","lsn":"0/16B3748"})") !=
          std::string::npos);
    CHECK(json.find("\"table\"") == std::string::npos);
    auto after = captureStderr(config::LogFormat::Json, [] { spdlog::info("no fields"); });
    CHECK(after.find("error_kind") == std::string::npos);
    CHECK(after.find(R"("slot":"outboxd_slot")") != std::string::npos);
}

TEST_CASE("SIGHUP is logged and ignored; a stop that hangs hits the exit deadline", "[app]") {
    std::atomic<bool> stop{false};
    std::atomic<int> hangups{0};
    std::atomic<bool> deadline_hit{false};
    auto text = captureStderr(config::LogFormat::Text, [&] {
        app::SignalWatch watch(stop, hangups, 300ms, [&] { deadline_hit = true; });
        hangups.fetch_add(1);
        std::this_thread::sleep_for(300ms);
        CHECK_FALSE(deadline_hit.load());
        stop = true;
        auto until = std::chrono::steady_clock::now() + 3s;
        while (!deadline_hit.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
    });
    CHECK(deadline_hit.load());
    CHECK(text.find("SIGHUP received: only payload.protobuf.descriptor_set is reloaded") != std::string::npos);
    CHECK(text.find("still running 300 ms after the stop request") != std::string::npos);
}
