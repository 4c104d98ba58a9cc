// The metrics an operator reads and the HTTP endpoint that serves them: names, absent-until-known
// series, the exposition's spelling, bounded series, and probes that answer under load.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>
#include <vector>

#include "metrics/http_server.h"
#include "metrics/metrics.h"

using namespace outboxd;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

int connectTo(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

// GET path, reading the whole answer within `timeout`; "" when none came in time.
std::string get(int port, const std::string& path, std::chrono::milliseconds timeout) {
    int fd = connectTo(port);
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string answer;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            answer.clear();
            break;
        }
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        answer.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return answer;
}

}  // namespace

TEST_CASE("slot gauges are absent until the first slot check, then carry its time", "[metrics]") {
    metrics::Metrics m;
    auto before = m.render();
    CHECK_FALSE(has(before, "\noutboxd_slot_active "));
    CHECK_FALSE(has(before, "\noutboxd_slot_retained_wal_bytes "));
    CHECK_FALSE(has(before, "\noutboxd_slot_safe_wal_size_bytes "));
    CHECK_FALSE(has(before, "\noutboxd_slot_wal_status{"));
    CHECK_FALSE(has(before, "\noutboxd_slot_last_check_timestamp_seconds "));
    m.slotState(true, true, "reserved", std::numeric_limits<double>::quiet_NaN(), 1234);
    auto after = m.render();
    CHECK(has(after, "\noutboxd_slot_active 1\n"));
    CHECK(has(after, "\noutboxd_slot_retained_wal_bytes 1234\n"));
    CHECK(has(after, "\noutboxd_slot_wal_status{status=\"reserved\"} 1\n"));
    CHECK(has(after, "\noutboxd_slot_last_check_timestamp_seconds "));
    // NaN as the exposition format spells it.
    CHECK(has(after, "\noutboxd_slot_safe_wal_size_bytes NaN\n"));
    CHECK_FALSE(has(after, " Nan\n"));
}

TEST_CASE("the bytes counter ends in _bytes_total", "[metrics]") {
    metrics::Metrics m;
    m.eventPublished("t", 10, 0.001);
    auto text = m.render();
    CHECK(has(text, "\noutboxd_topic_published_bytes_total{topic=\"t\"} 10\n"));
    CHECK_FALSE(has(text, "outboxd_topic_bytes_published_total"));
}

TEST_CASE("process metrics are exported", "[metrics]") {
    metrics::Metrics m;
    auto text = m.render();
    for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                             "process_start_time_seconds", "process_open_fds", "process_max_fds"}) {
        CAPTURE(name);
        CHECK(has(text, std::string("\n") + name + " "));
    }
}

TEST_CASE("build_info names the commit and the libraries", "[metrics]") {
    metrics::Metrics m;
    m.setLibraryVersions({{"librdkafka", "2.0.2"}, {"libpq", "150005"}});
    auto text = m.render();
    CHECK(has(text, "commit=\""));
    CHECK(has(text, "librdkafka=\"2.0.2\""));
    CHECK(has(text, "libpq=\"150005\""));
    // One series only.
    auto first = text.find("\noutboxd_build_info{");
    REQUIRE(first != std::string::npos);
    CHECK(text.find("\noutboxd_build_info{", first + 1) == std::string::npos);
}

TEST_CASE("kafka_up and readiness say what their help says", "[metrics]") {
    metrics::Metrics m;
    CHECK(has(m.render(), "\noutboxd_kafka_up 0\n"));
    CHECK_FALSE(m.notReadyReason().empty());
    m.setStreaming(true);
    CHECK_FALSE(m.notReadyReason().empty());  // Kafka not known yet
    m.setKafkaUp(true);
    CHECK(m.notReadyReason().empty());
    CHECK(has(m.render(), "\noutboxd_kafka_up 1\n"));
    m.setKafkaUp(false);
    CHECK(m.notReadyReason() == "no Kafka broker is reachable");
    m.setKafkaUp(true);
    m.setStreaming(false);
    CHECK(m.notReadyReason() == "the replication stream is not open");
}

TEST_CASE("per-topic series are bounded", "[metrics]") {
    metrics::Metrics m;
    for (std::size_t i = 0; i < metrics::Metrics::kMaxTopicSeries + 500; ++i) {
        m.eventPublished("topic-" + std::to_string(i), 1, 0.001);
    }
    auto text = m.render();
    std::size_t series = 0;
    for (auto pos = text.find("\noutboxd_topic_events_published_total{"); pos != std::string::npos;
         pos = text.find("\noutboxd_topic_events_published_total{", pos + 1)) {
        ++series;
    }
    CHECK(series == metrics::Metrics::kMaxTopicSeries + 1);
    CHECK(has(text, "\noutboxd_topic_events_published_total{topic=\"(other)\"} 500\n"));
}

TEST_CASE("the HTTP endpoint stops safely at any moment", "[metrics][http]") {
    std::atomic<bool> done{false};
    std::thread watchdog([&] {
        for (int i = 0; i < 600 && !done.load(); ++i) std::this_thread::sleep_for(100ms);
        if (!done.load()) {
            std::fprintf(stderr, "HttpServer start/stop hung\n");
            std::_Exit(3);
        }
    });
    metrics::Metrics m;
    {
        metrics::HttpServer never_started(m);
        never_started.stop();
    }
    for (int i = 0; i < 300; ++i) {
        metrics::HttpServer http(m);
        auto started = http.start("127.0.0.1:0");
        REQUIRE(started);
        http.stop();
        http.stop();
    }
    done = true;
    watchdog.join();
}

TEST_CASE("probes answer within 1 s with 300 slow connections open", "[metrics][http]") {
    metrics::Metrics m;
    metrics::HttpServer http(m);
    REQUIRE(http.start("127.0.0.1:0"));
    REQUIRE(http.port() > 0);
    std::vector<int> slow;
    for (int i = 0; i < 300; ++i) {
        int fd = connectTo(http.port());
        const std::string half = "GET /metrics HTTP/1.1\r\nHost: x\r\n";  // never finished
        REQUIRE(::send(fd, half.data(), half.size(), MSG_NOSIGNAL) > 0);
        slow.push_back(fd);
    }
    std::this_thread::sleep_for(200ms);
    for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
        CAPTURE(path);
        auto start = std::chrono::steady_clock::now();
        auto answer = get(http.port(), path, 1000ms);
        CHECK(std::chrono::steady_clock::now() - start < 1s);
        CHECK(answer.starts_with("HTTP/1.1 "));
    }
    CHECK(get(http.port(), "/healthz", 1000ms).starts_with("HTTP/1.1 200"));
    CHECK(get(http.port(), "/readyz", 1000ms).starts_with("HTTP/1.1 503"));
    for (int fd : slow) ::close(fd);
}
